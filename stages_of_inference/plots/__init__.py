"""Figures: plotly figures of every result table, to show, compose or export.

``style`` holds what all figures share (one colour per model); each other module draws
one family of figures from the tables of :mod:`stages_of_inference.analyses`, the sweep
and the stage estimate.
"""

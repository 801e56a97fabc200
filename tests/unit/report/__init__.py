"""Unit tests of stages_of_inference.report: the HTML report of a results folder."""

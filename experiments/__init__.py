"""Command-line entry points over :mod:`stages_of_inference.experiments`, run from the repository root.

``python -m experiments`` lists the experiments; ``python -m experiments.<name> --help``
shows one's flags; ``python -m experiments.reproduce`` runs them all. Not installed:
``stages-of-inference run`` is the installed equivalent of the reproduction.
"""

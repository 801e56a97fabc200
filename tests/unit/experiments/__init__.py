"""Unit tests of :mod:`stages_of_inference.experiments`: the runner, the reproduction, their command lines."""

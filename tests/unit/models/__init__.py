"""Unit tests of stages_of_inference.models, one file per module."""

"""Unit tests of stages_of_inference.analyses."""

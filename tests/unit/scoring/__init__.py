"""Unit tests of stages_of_inference.scoring."""

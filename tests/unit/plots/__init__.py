"""Unit tests of stages_of_inference.plots: one module per figure family, plus the shared style."""

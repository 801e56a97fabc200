"""Scoring: decode residuals to next-token distributions and measure what an intervention changed.

``decode`` (the unembedding, whole or by vocabulary tiles) and ``workspace`` (reused
buffers) feed ``chunks`` (scoring a chunk of tokens against the original model), whose
per-token values are defined in ``metrics``; ``per_sequence`` sums them over each
sequence of a batch (the sweep's shard format) and builds the sweep's table, with
``summary`` turning per-sequence sums into means with bootstrap confidence intervals.
"""

from stages_of_inference.scoring.metrics import TOKEN_METRICS, compare_predictions, token_metrics

__all__ = ["TOKEN_METRICS", "compare_predictions", "token_metrics"]

"""The toolkit's one token policy: BOS opens every window, and which positions are scored.

Every tensor of tokens a metric sees is a window ``[BOS, t_1, ..., t_{n-1}]`` made by
:func:`~stages_of_inference.corpus.load_corpus`. The prediction made *at* BOS is not
scored, and the last position has no next token inside the window, so a window of
``seq_len`` tokens scores positions ``1 .. seq_len - 2``: ``seq_len - 2`` predictions,
each against the token that follows it.

Every analysis checks its windows here (:func:`check_windows`), so a bad tensor gets
the same error, naming the analysis, wherever it is passed.
"""

from __future__ import annotations

from typing import Any

from jaxtyping import Int
from torch import Tensor

from stages_of_inference.errors import ConfigError

MIN_SEQ_LEN = 3
"""Shortest window with a scored prediction: BOS, the token at position 1, and its next token."""


def scored_positions(seq_len: int) -> slice:
    """The positions whose next-token prediction is scored: 1 .. seq_len - 2 (BOS excluded).

    Example:
        >>> list(range(5)[scored_positions(5)])
        [1, 2, 3]
    """
    return slice(1, seq_len - 1)


def n_scored(seq_len: int) -> int:
    """How many predictions a window of ``seq_len`` tokens scores: ``seq_len - 2``.

    Example:
        >>> n_scored(5)
        3
    """
    return len(range(seq_len)[scored_positions(seq_len)])


def prediction_targets(tokens: Int[Tensor, "batch pos"]) -> Int[Tensor, "batch scored"]:
    """The true next token of every scored position.

    Example:
        >>> import torch
        >>> prediction_targets(torch.tensor([[0, 7, 8, 9, 10]])).tolist()
        [[8, 9, 10]]
    """
    return tokens[:, 2:]


def check_windows(tokens: Tensor, *, what: str, min_len: int = MIN_SEQ_LEN) -> None:
    """Raise unless ``tokens`` is a non-empty ``[batch, pos]`` tensor of windows of ``min_len``+ tokens.

    Args:
        tokens: The windows passed to an analysis.
        what: The analysis, named in the error (e.g. ``"the logit lens"``).
        min_len: Fewest tokens per window, BOS included: :data:`MIN_SEQ_LEN` for
            anything that scores predictions, 2 (BOS and one token) for analyses of
            non-BOS positions, 1 for a shape check alone.

    Raises:
        ConfigError: ``tokens`` is not 2-d, holds no window, or its windows are shorter
            than ``min_len``.

    Example:
        >>> import torch
        >>> check_windows(torch.zeros(2, 2, dtype=torch.long), what="the logit lens")
        Traceback (most recent call last):
        ...
        stages_of_inference.errors.ConfigError: the logit lens needs windows of at least 3 tokens, BOS included, got windows of 2; pass longer windows (load_corpus seq_len)
    """
    if tokens.ndim != 2 or tokens.shape[0] == 0:
        raise ConfigError(
            f"{what} needs a non-empty [batch, pos] tensor of token windows, got shape {tuple(tokens.shape)}"
        )
    if tokens.shape[1] < min_len:
        raise ConfigError(
            f"{what} needs windows of at least {min_len} tokens, BOS included, "
            f"got windows of {tokens.shape[1]}; pass longer windows (load_corpus seq_len)"
        )


def bos_token_id(tokenizer: Any) -> int:
    """Return the BOS id that opens every window: BOS, else EOS.

    Raises:
        ConfigError: The tokenizer has neither a BOS nor an EOS token.
    """
    return _first_special_id(tokenizer, ("bos_token_id", "eos_token_id"))


def separator_token_id(tokenizer: Any) -> int:
    """Return the id placed between two documents: EOS, else BOS.

    Raises:
        ConfigError: The tokenizer has neither a BOS nor an EOS token.
    """
    return _first_special_id(tokenizer, ("eos_token_id", "bos_token_id"))


def _first_special_id(tokenizer: Any, attributes: tuple[str, ...]) -> int:
    for attribute in attributes:
        value = getattr(tokenizer, attribute, None)
        if value is not None:
            return int(value)
    raise ConfigError(
        f"tokenizer {type(tokenizer).__name__} has neither a BOS nor an EOS token; "
        "pass a tokenizer that defines bos_token or eos_token"
    )

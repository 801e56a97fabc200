"""The toolkit's one token policy: BOS opens every window, and which positions are scored.

Every tensor of tokens a metric sees is a window ``[BOS, t_1, ..., t_{n-1}]`` made by
:func:`~stages_of_inference.corpus.load_corpus`. The prediction made *at* BOS is not
scored, and the last position has no next token inside the window, so a window of
``seq_len`` tokens scores positions ``1 .. seq_len - 2``: ``seq_len - 2`` predictions,
each against the token that follows it.
"""

from __future__ import annotations

from typing import Any

from jaxtyping import Int
from torch import Tensor

from stages_of_inference.errors import ConfigError


def scored_positions(seq_len: int) -> slice:
    """The positions whose next-token prediction is scored: 1 .. seq_len - 2 (BOS excluded)."""
    return slice(1, seq_len - 1)

def prediction_targets(tokens: Int[Tensor, "batch pos"]) -> Int[Tensor, "batch scored"]:
    """The true next token of every scored position."""
    return tokens[:, 2:]

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

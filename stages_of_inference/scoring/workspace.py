"""Reusable buffers for the ``[tokens, d_vocab]`` tensors of unembedding and scoring.

A chunk of 256 tokens makes logits of 50 MB on SmolLM2 and 268 MB on Gemma 3. On a
CPU, a freshly allocated tensor that large comes from new pages of memory, and the
first write to each page faults: measured on this project's machine, writing a new
50 MB tensor takes 26 ms where writing into an existing one takes 5 ms, more than the
arithmetic. The sweep and the logit lens decode the same chunk shape hundreds of
times, so they keep one :class:`Workspace` and write every full-vocabulary
intermediate into its buffers (``docs/performance.md`` has the measurements).
"""

from __future__ import annotations

import torch
from torch import Tensor

CHUNK_ELEMENTS = 1 << 26
"""Logit entries decoded at once: 268 MB per full-vocabulary float32 buffer."""
MAX_CHUNK_ROWS = 256
"""The most tokens decoded at once, whatever the vocabulary."""


def chunk_rows(d_vocab: int) -> int:
    """Tokens to decode at once: as many as :data:`CHUNK_ELEMENTS` allows, at most :data:`MAX_CHUNK_ROWS`.

    Fewer rows make each pass over ``W_U`` serve fewer tokens: Gemma 3's
    ``[n, 640] @ [640, 262144]`` runs at 56 GFLOP/s for n = 128 against 67 for n = 256
    on this project's machine. More rows did not pay in place: scoring 12 interventions
    of SmolLM2 on 1,016 tokens took 14.2 / 13.8 s with 256 rows and 14.3 / 13.9 s with
    512 (alternating runs in one process), although the bare matmul is faster at 512.
    The element bound keeps Gemma 3's full-vocabulary buffers at 268 MB each.

    Example:
        >>> chunk_rows(49152), chunk_rows(262144), chunk_rows(10**9)
        (256, 256, 1)
    """
    return max(1, min(MAX_CHUNK_ROWS, CHUNK_ELEMENTS // d_vocab))


class Workspace:
    """Named scratch buffers, each reused for any tensor of up to its number of rows.

    A buffer is a contiguous ``[rows, *shape]`` tensor; asking for fewer rows gives a
    view of its first rows (still contiguous), so the last, shorter chunk of a batch
    reuses the buffer too. Asking for more rows, another trailing shape, dtype or
    device replaces the buffer. The contents are whatever the last user left: callers
    write before they read.

    Example:
        >>> workspace = Workspace()
        >>> logits = workspace.buffer("logits", (256, 49152))
        >>> workspace.buffer("logits", (100, 49152)).data_ptr() == logits.data_ptr()
        True
    """

    def __init__(self) -> None:
        self._buffers: dict[str, Tensor] = {}

    def buffer(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> Tensor:
        """A ``shape`` tensor of uninitialised values that stays valid until the next request for ``name``."""
        rows, rest = shape[0], tuple(shape[1:])
        held = self._buffers.get(name)
        fits = (
            held is not None
            and held.shape[0] >= rows
            and tuple(held.shape[1:]) == rest
            and held.dtype == dtype
            and held.device == torch.device(device)
        )
        if held is None or not fits:
            held = torch.empty((rows, *rest), dtype=dtype, device=device)
            self._buffers[name] = held
        return held[:rows]

    def like(self, name: str, tensor: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """A buffer with ``tensor``'s shape and device (and its dtype unless ``dtype`` is given)."""
        return self.buffer(name, tuple(tensor.shape), dtype or tensor.dtype, tensor.device)

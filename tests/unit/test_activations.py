"""Unit tests of stages_of_inference.activations: decoding residuals into a buffer."""

from __future__ import annotations

import torch

from stages_of_inference.activations import unembed
from stages_of_inference.workspace import Workspace


def _residual(model, rows: int = 6) -> torch.Tensor:
    return torch.randn(rows, model.cfg.d_model, generator=torch.Generator().manual_seed(0))


def test_unembed_into_a_buffer_equals_the_head_exactly(tiny_model) -> None:
    residual = _residual(tiny_model)
    with torch.inference_mode():
        expected = unembed(tiny_model, residual)
        buffer = Workspace().buffer("logits", tuple(expected.shape))
        got = unembed(tiny_model, residual, out=buffer)
        assert torch.equal(got, expected)
        assert torch.equal(tiny_model(torch.tensor([[0, 1, 2]]))[0], unembed(tiny_model, _final(tiny_model)))


def test_unembed_runs_the_head_when_a_hook_is_attached(tiny_model) -> None:
    residual = _residual(tiny_model)
    seen = []
    with torch.inference_mode():
        buffer = Workspace().buffer("logits", (residual.shape[0], tiny_model.cfg.d_vocab))
        doubled = lambda value, hook: seen.append(hook.name) or value * 2  # noqa: E731
        with tiny_model.hooks(fwd_hooks=[("unembed.hook_out", doubled)]):
            got = unembed(tiny_model, residual, out=buffer)
        assert seen == ["unembed.hook_out"]
        assert torch.equal(got, 2 * unembed(tiny_model, residual))


def _final(model) -> torch.Tensor:
    """The unembedding's input for the tokens 0, 1, 2, via a hook."""
    captured = {}
    model.run_with_hooks(
        torch.tensor([[0, 1, 2]]),
        fwd_hooks=[("unembed.hook_in", lambda value, hook: captured.setdefault("x", value[0].clone()))],
    )
    return captured["x"]

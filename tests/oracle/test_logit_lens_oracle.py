"""Oracle tests of the logit lens: the bridge-based lens against plain formulas on an untouched HF copy.

The bridge edits the HF model it wraps, so each test builds a second, identical HF model
(same seed) and decodes its hidden states by hand: the final RMSNorm / LayerNorm written
out from the norm's weights, then ``@ W_U``, then the metrics in float64 numpy.

Tolerances. The bridge decodes in float32, the oracle in float64. A float32 dot
product of ``d`` terms is exact to ``d * eps32 / 2`` times the sum of the terms'
absolute values (Higham, ch. 3); the norm before it and, in compatibility mode, the
residual stream recomputed through ``n_layers`` blocks with folded weights, add
at most that much again per step. So each lens logit is within
``delta = (n_layers + 2) * d_model * eps32 * max_j sum_i |n_i W_U[i, j]|`` of the
oracle's (:func:`logit_error_bound`, per row). The 0/1 metrics then can only differ
on rows where the oracle's logits are within ``2 delta`` of a tie
(:func:`near_ties`); everywhere else they must agree exactly.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, Gemma2Config, PreTrainedModel

from stages_of_inference.analyses.logit_lens import METRICS, logit_lens
from stages_of_inference.models import bridge_from_hf
from tests.tiny_models import tiny_hf_model

pytestmark = pytest.mark.oracle

RMS_NORM = ("llama", "gemma3", "qwen2")
"""The tiny architectures with RMSNorm (the others have LayerNorm)."""


def final_norm(hf_model: PreTrainedModel, architecture: str) -> torch.nn.Module:
    """The HF module applied between the last block and the unembedding."""
    if architecture == "neox":
        return hf_model.gpt_neox.final_layer_norm
    if architecture == "gpt2":
        return hf_model.transformer.ln_f
    return hf_model.model.norm


def plain_norm(
    hidden: np.ndarray, norm: torch.nn.Module, architecture: str, scale: np.ndarray | None = None
) -> np.ndarray:
    """The final norm written out: RMSNorm (Gemma: weight offset by 1) or LayerNorm.

    ``scale`` replaces the vector's own root-mean-square (the old shortcut).
    """
    weight = norm.weight.detach().double().numpy()
    if architecture in RMS_NORM:
        eps = norm.eps if hasattr(norm, "eps") else norm.variance_epsilon
        own = np.sqrt((hidden**2).mean(-1, keepdims=True) + eps)
        gain = 1.0 + weight if architecture == "gemma3" else weight
        return hidden / (own if scale is None else scale) * gain
    centred = hidden - hidden.mean(-1, keepdims=True)
    own = np.sqrt((centred**2).mean(-1, keepdims=True) + norm.eps)
    return centred / (own if scale is None else scale) * weight + norm.bias.detach().double().numpy()


def plain_metrics(logits: np.ndarray, final_logits: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """The lens metrics, averaged over rows, from float64 logits."""

    def log_softmax(x: np.ndarray) -> np.ndarray:
        shifted = x - x.max(-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))

    log_p, log_final = log_softmax(logits), log_softmax(final_logits)
    rows = np.arange(len(targets))
    target_log_p = log_p[rows, targets]
    return {
        "entropy_bits": float((-(np.exp(log_p) * log_p).sum(-1) / math.log(2)).mean()),
        "kl_to_final": float((np.exp(log_final) * (log_final - log_p)).sum(-1).mean()),
        "loss": float(-target_log_p.mean()),
        "accuracy": float((log_p.argmax(-1) == targets).mean()),
        "true_token_rank": float((log_p > target_log_p[:, None]).sum(-1).mean()),
        "agreement_with_final": float((log_p.argmax(-1) == log_final.argmax(-1)).mean()),
    }


EPS32 = float(np.finfo(np.float32).eps)


def logit_error_bound(normed: np.ndarray, head: np.ndarray, n_layers: int) -> np.ndarray:
    """Per row, a bound on |bridge lens logit - oracle logit| from float32 rounding (module docstring)."""
    terms = np.abs(normed) @ np.abs(head).T
    return (n_layers + 2) * normed.shape[-1] * EPS32 * terms.max(-1)


def smooth_metric_bounds(delta: np.ndarray, final_delta: np.ndarray, d_vocab: int) -> dict[str, float]:
    """How far each smooth metric's mean can move when every logit moves by up to ``delta`` (per row).

    log-softmax moves by at most ``2 ||dz||_inf`` per entry, so the loss by ``2 delta`` and
    KL(final || lens) = sum p_f (log p_f - log p) by ``2 delta + 2 final_delta`` (p_f moving
    too adds at most its own log-ratio change, bounded the same way). The entropy's gradient
    in the logits is ``-p_j (log p_j + H)``, whose absolute sum is at most ``2 log V``, so
    entropy moves by ``2 log(V) delta`` nats (divided by ln 2 for bits). A mean of rows moves by
    at most the mean of the row bounds; 1e-9 covers the float64 reference's own rounding.
    """
    return {
        "loss": float((2 * delta).mean()) + 1e-9,
        "kl_to_final": float((2 * delta + 4 * final_delta).mean()) + 1e-9,
        "entropy_bits": float((2 * np.log(d_vocab) * delta).mean() / np.log(2)) + 1e-9,
    }


def near_ties(
    logits: np.ndarray, targets: np.ndarray, delta: np.ndarray, final_logits: np.ndarray, final_delta: np.ndarray
) -> dict[str, float]:
    """How far each 0/1 metric's mean can move when every logit moves by up to ``delta`` (per row).

    Top-1 can change only where the top two logits are within ``2 delta``; the true
    token's rank only by the tokens within ``2 delta`` of its logit.
    """
    rows = np.arange(len(targets))

    def ambiguous_top1(x: np.ndarray, d: np.ndarray) -> np.ndarray:
        top2 = np.sort(x, axis=-1)[:, -2:]
        return top2[:, 1] - top2[:, 0] <= 2 * d

    lens_tie, final_tie = ambiguous_top1(logits, delta), ambiguous_top1(final_logits, final_delta)
    close_to_target = np.abs(logits - logits[rows, targets][:, None]) <= 2 * delta[:, None]
    close_to_target[rows, targets] = False
    return {
        "accuracy": float(lens_tie.mean()),
        "agreement_with_final": float((lens_tie | final_tie).mean()),
        "true_token_rank": float(close_to_target.sum(-1).mean()),
    }


def hf_states(
    hf_model: PreTrainedModel, architecture: str, tokens: torch.Tensor
) -> tuple[list[np.ndarray], np.ndarray]:
    """Hidden states (embedding, then each block but the last) and the final norm's input, plus logits."""
    captured = {}
    handle = final_norm(hf_model, architecture).register_forward_pre_hook(
        lambda module, args: captured.__setitem__("last", args[0])
    )
    with torch.no_grad():
        output = hf_model(tokens, output_hidden_states=True)
    handle.remove()
    states = [h.double().numpy() for h in output.hidden_states[:-1]] + [captured["last"].double().numpy()]
    return states, output.logits.double().numpy()


def unembed(hf_model: PreTrainedModel, normed: np.ndarray) -> np.ndarray:
    head = hf_model.get_output_embeddings()
    logits = normed @ head.weight.detach().double().numpy().T
    return logits if head.bias is None else logits + head.bias.detach().double().numpy()


def rows(activation: np.ndarray) -> np.ndarray:
    """Positions 1..T-2, batch and position flattened (the scored predictions)."""
    return activation[:, 1:-1].reshape(-1, *activation.shape[2:])


@pytest.mark.parametrize("compatibility_mode", [False, True], ids=["raw", "compat"])
@pytest.mark.parametrize("reuse_final_norm_scale", [False, True], ids=["own-scale", "final-scale"])
def test_every_point_equals_hand_decoding_of_hf_hidden_states(
    architecture, tiny_tokenizer, tiny_tokens, compatibility_mode, reuse_final_norm_scale
) -> None:
    reference = tiny_hf_model(architecture, vocab_size=len(tiny_tokenizer))
    bridge = bridge_from_hf(
        tiny_hf_model(architecture, vocab_size=len(tiny_tokenizer)),
        tiny_tokenizer,
        compatibility_mode=compatibility_mode,
    )
    table = logit_lens(bridge, tiny_tokens, batch_size=2, reuse_final_norm_scale=reuse_final_norm_scale)

    states, final_logits = hf_states(reference, architecture, tiny_tokens)
    assert len(states) == len(table) == bridge.cfg.n_layers + 1
    norm = final_norm(reference, architecture)
    last = states[-1]
    final_scale = None
    if reuse_final_norm_scale:
        centred = last if architecture in RMS_NORM else last - last.mean(-1, keepdims=True)
        eps = getattr(norm, "eps", None) or norm.variance_epsilon
        final_scale = rows(np.sqrt((centred**2).mean(-1, keepdims=True) + eps))
    n_docs, n_pos = tiny_tokens.shape
    targets = np.array([int(tiny_tokens[d, p + 1]) for d in range(n_docs) for p in range(1, n_pos - 1)])
    head = reference.get_output_embeddings().weight.detach().double().numpy()
    n_layers = bridge.cfg.n_layers
    final_delta = logit_error_bound(plain_norm(rows(last), norm, architecture), head, n_layers)
    for point, hidden in enumerate(states):
        normed = plain_norm(rows(hidden), norm, architecture, final_scale)
        logits = unembed(reference, normed)
        expected = plain_metrics(logits, rows(final_logits), targets)
        delta = logit_error_bound(normed, head, n_layers)
        slack = near_ties(logits, targets, delta, rows(final_logits), final_delta)
        row = table.iloc[point]
        for metric, bound in smooth_metric_bounds(delta, final_delta, head.shape[0]).items():
            assert abs(row[metric] - expected[metric]) <= bound, (point, metric, bound)
        for metric, allowed in slack.items():
            assert abs(row[metric] - expected[metric]) <= allowed, (point, metric, allowed)


def test_last_point_reproduces_the_output_in_both_modes(architecture, tiny_tokenizer, tiny_tokens) -> None:
    for compatibility_mode in (False, True):
        bridge = bridge_from_hf(
            tiny_hf_model(architecture, vocab_size=len(tiny_tokenizer)),
            tiny_tokenizer,
            compatibility_mode=compatibility_mode,
        )
        last = logit_lens(bridge, tiny_tokens).iloc[-1]
        assert abs(last.kl_to_final) < 1e-5
        assert last.agreement_with_final == 1.0


def test_final_logit_softcap_is_applied(tiny_tokenizer, tiny_tokens) -> None:
    """Gemma 2 caps its logits (cap * tanh(x / cap)); the lens's last point must too."""
    config = Gemma2Config(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=64,
        final_logit_softcapping=0.1,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    torch.manual_seed(0)
    hf_model = AutoModelForCausalLM.from_config(config).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge = bridge_from_hf(hf_model, tiny_tokenizer, compatibility_mode=False)
    with torch.inference_mode():
        logits = bridge(tiny_tokens)
    assert logits.abs().max() <= 0.1  # the cap is active (uncapped, the last point's KL is ~1e-3)
    last = logit_lens(bridge, tiny_tokens).iloc[-1]
    assert abs(last.kl_to_final) < 1e-5 and last.agreement_with_final == 1.0
    assert set(METRICS) <= set(last.index)

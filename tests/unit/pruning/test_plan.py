"""Unit tests of stages_of_inference.pruning.plan on tiny random models of four architectures.

The reference measures each set of deleted layers directly: the original and the
pruned model run in full (the pruned one with its layer order written out by hand),
and KL and accuracy are computed here in float64, with no prefix reuse and no chunked
unembedding. Tolerance: the planner runs the same float32 forwards, reaching the
final residual from a cached prefix and unembedding in chunks, so its per-token
values differ from the reference by float32 rounding only; ``1e-5`` relative plus
``1e-7`` absolute on a mean of a few hundred tokens is far above that and far below
the differences between candidate sets.
"""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from transformer_lens.model_bridge import TransformerBridge
from transformers import PreTrainedTokenizerFast

from stages_of_inference.corpus import load_corpus
from stages_of_inference.errors import ConfigError
from stages_of_inference.interventions import layer_order
from stages_of_inference.models import bridge_from_hf
from stages_of_inference.pruning import (
    PrunePlan,
    angular_distance_plan,
    block_influence_plan,
    prune_plan,
    split_held_out,
)
from stages_of_inference.pruning.plan import METHODS
from tests.tiny_models import N_LAYERS, perturb_norm_weights, tiny_hf_model

pytestmark = pytest.mark.usefixtures("single_thread")
RTOL, ATOL = 1e-5, 1e-7


@pytest.fixture
def windows(tiny_tokenizer: PreTrainedTokenizerFast) -> torch.Tensor:
    """Six windows of 24 tokens: three for selection, three held out."""
    return load_corpus("embedded", tiny_tokenizer, n_tokens=6 * 24, seq_len=24, seed=0)


@pytest.fixture
def varied_model(tiny_tokenizer: PreTrainedTokenizerFast) -> TransformerBridge:
    """A tiny Llama whose norm gains vary, so that deleting different layers costs clearly different amounts."""
    hf_model = perturb_norm_weights(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer), seed=3), seed=3, scale=2.0)
    return bridge_from_hf(hf_model, tiny_tokenizer, compatibility_mode=False)


def joint_deletion(model: TransformerBridge, tokens: torch.Tensor, deleted: tuple[int, ...]) -> dict[str, float]:
    """KL(original ‖ pruned) and accuracy of the model without ``deleted``, computed directly."""
    kept = [layer for layer in range(N_LAYERS) if layer not in deleted]
    with torch.inference_mode():
        original = model(tokens).double().log_softmax(-1)[:, 1:-1]
        with layer_order(model, kept):
            pruned = model(tokens).double().log_softmax(-1)[:, 1:-1]
    kl = (original.exp() * (original - pruned)).sum(-1)
    correct = pruned.argmax(-1) == tokens[:, 2:]
    return {"kl": float(kl.mean()), "accuracy": float(correct.double().mean())}


def test_every_step_is_a_joint_deletion_measured_on_its_windows(tiny_model: TransformerBridge, windows) -> None:
    plan = prune_plan(tiny_model, windows, 3, n_bootstrap=20, progress=False)
    selection, held = split_held_out(windows, 0.5)
    assert plan.steps.step.tolist() == [1, 2, 3]
    previous: set[int] = set()
    for row in plan.steps.itertuples():
        deleted = tuple(json.loads(row.deleted_layers))
        assert len(deleted) == row.step and previous < set(deleted)  # greedy: each step adds one layer
        previous = set(deleted)
        chosen = joint_deletion(tiny_model, selection, deleted)
        assert row.selection_kl == pytest.approx(chosen["kl"], rel=RTOL, abs=ATOL)
        assert row.selection_accuracy == pytest.approx(chosen["accuracy"], abs=1e-12)
        assert row.kl == pytest.approx(joint_deletion(tiny_model, held, deleted)["kl"], rel=RTOL, abs=ATOL)
        assert row.kl_ci_low <= row.kl <= row.kl_ci_high


def test_greedy_takes_the_best_layer_first(varied_model: TransformerBridge, windows) -> None:
    plan = prune_plan(varied_model, windows, 1, progress=False, n_bootstrap=0)
    selection, _ = split_held_out(windows, 0.5)
    kls = {layer: joint_deletion(varied_model, selection, (layer,))["kl"] for layer in range(N_LAYERS)}
    assert plan.deleted_layers() == [min(kls, key=kls.__getitem__)]


def test_a_beam_as_wide_as_every_set_finds_the_best_pair(varied_model: TransformerBridge, windows) -> None:
    plan = prune_plan(varied_model, windows, 2, strategy="beam", beam_width=N_LAYERS, progress=False, n_bootstrap=0)
    selection, _ = split_held_out(windows, 0.5)
    kls = {pair: joint_deletion(varied_model, selection, pair)["kl"] for pair in itertools.combinations(range(4), 2)}
    assert tuple(plan.deleted_layers(2)) == min(kls, key=kls.__getitem__)
    assert plan.beam_width == N_LAYERS and plan.strategy == "beam"


def test_the_comparison_evaluates_each_method_s_own_sets(varied_model: TransformerBridge, windows) -> None:
    plan = prune_plan(varied_model, windows, 2, n_bootstrap=20, progress=False)
    assert plan.comparison.groupby("method", sort=False).n_deleted.apply(list).to_dict() == {m: [1, 2] for m in METHODS}
    _, held = split_held_out(windows, 0.5)
    for row in plan.comparison.itertuples():
        deleted = json.loads(row.deleted_layers)
        expected = {
            "planner": plan.deleted_layers(row.n_deleted),
            "block_influence": block_influence_plan(plan.layer_scores, row.n_deleted),
            "angular_distance": angular_distance_plan(plan.angular_distances, row.n_deleted),
        }[row.method]
        assert deleted == expected
        assert row.kl == pytest.approx(joint_deletion(varied_model, held, tuple(deleted))["kl"], rel=RTOL, abs=ATOL)
    assert set(plan.tokens_sha256) == {"selection", "held_out"}
    assert plan.tokens_sha256["selection"] != plan.tokens_sha256["held_out"]


def test_kept_layers_are_the_rest_in_order(varied_model: TransformerBridge, windows) -> None:
    plan = prune_plan(varied_model, windows, 2, n_bootstrap=0, progress=False)
    assert sorted(plan.deleted_layers() + plan.kept_layers()) == list(range(N_LAYERS))
    assert plan.kept_layers() == sorted(plan.kept_layers())
    with pytest.raises(ConfigError, match="choose 1 to 2"):
        plan.deleted_layers(3)


def test_held_out_windows_are_the_last_ones_and_disjoint(windows) -> None:
    selection, held = split_held_out(windows, 1 / 3)
    assert torch.equal(torch.cat([selection, held]), windows)
    assert (selection.shape[0], held.shape[0]) == (4, 2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_layers": 0}, "between 1 and 3"),
        ({"max_layers": N_LAYERS}, "between 1 and 3"),
        ({"max_layers": True}, "between 1 and 3"),
        ({"max_layers": 1, "strategy": "random"}, "unknown strategy"),
        ({"max_layers": 1, "strategy": "beam", "beam_width": 0}, "at least 1"),
        ({"max_layers": 1, "held_out": 0.0}, "held-out fraction"),
        ({"max_layers": 1, "held_out": 1.0}, "held-out fraction"),
        ({"max_layers": 1, "held_out": 0.01}, "0 held-out windows"),
    ],
)
def test_bad_options_are_refused_before_any_work(varied_model, windows, options, message, unchecked_shapes) -> None:
    with pytest.raises(ConfigError, match=message):
        prune_plan(varied_model, windows, progress=False, **options)


def test_a_single_window_cannot_be_split(varied_model, windows) -> None:
    with pytest.raises(ConfigError, match="at least 2 windows"):
        prune_plan(varied_model, windows[:1], 1, progress=False)


def test_the_plan_is_a_frozen_value(varied_model, windows) -> None:
    plan = prune_plan(varied_model, windows, 1, n_bootstrap=0, progress=False)
    assert isinstance(plan, PrunePlan) and plan.n_layers == N_LAYERS and plan.max_layers == 1
    with pytest.raises(AttributeError):
        plan.strategy = "beam"  # type: ignore[misc]

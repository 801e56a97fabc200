"""Unit tests of stages_of_inference.interventions on tiny random models of four architectures."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from stages_of_inference.errors import ConfigError
from stages_of_inference.interventions import (
    delete_attention,
    delete_layers,
    delete_mlp,
    layer_deletion_hooks,
    layer_order,
    swap_layers,
)
from stages_of_inference.models import bridge_from_hf
from tests.tiny_models import N_LAYERS, tiny_hf_model

# Every context manager with a spec that must change the output of a 4-layer model.
CONTEXTS: dict[str, Callable] = {
    "delete_layers": lambda m: delete_layers(m, [1]),
    "delete_layers_int": lambda m: delete_layers(m, 2),
    "delete_layers_many": lambda m: delete_layers(m, [0, 3]),
    "delete_attention": lambda m: delete_attention(m, [1]),
    "delete_mlp": lambda m: delete_mlp(m, [2]),
    "swap_layers": lambda m: swap_layers(m, 1, 2),
    "swap_layers_far": lambda m: swap_layers(m, 3, 0),
    "order_permutation": lambda m: layer_order(m, [3, 2, 1, 0]),
    "order_subset": lambda m: layer_order(m, [0, 2, 3]),
    "order_single": lambda m: layer_order(m, [3]),
    "order_repeats": lambda m: layer_order(m, [0, 1, 1, 2, 3, 3]),
    "order_repeats_long": lambda m: layer_order(m, [0, 0, 1, 1, 2, 2, 3, 3]),
}

pytestmark = pytest.mark.usefixtures("single_thread")


def run(model, tokens: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(tokens)


def layer_list(model) -> tuple[str, nn.ModuleList]:
    """The HF decoder's block list, found independently of the library's own search."""
    first = model.blocks[0]
    for name, module in model.original_model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == N_LAYERS and module[0] is first:
            return name, module
    raise AssertionError("no layer list found")


def snapshot(model) -> dict:
    """Everything a context must restore: the list object, its contents, per-slot config."""
    name, blocks = layer_list(model)
    config = model.original_model.config
    types = getattr(config, "layer_types", None)
    return {
        "name": name,
        "list": blocks,
        "contents": list(blocks),
        "num_hidden_layers": config.num_hidden_layers,
        "layer_types": list(types) if types is not None else None,
        "n_hooks": count_hooks(model),
    }


def count_hooks(model) -> int:
    return sum(len(hp._forward_hooks) for hp in model.hook_dict.values())


def assert_restored(model, before: dict) -> None:
    current = model.original_model.get_submodule(before["name"])
    assert current is before["list"]
    assert list(current) == before["contents"]
    config = model.original_model.config
    assert config.num_hidden_layers == before["num_hidden_layers"] == N_LAYERS
    if before["layer_types"] is not None:
        assert list(config.layer_types) == before["layer_types"]
    assert count_hooks(model) == before["n_hooks"]


# ---------------------------------------------------------------- restoration


@pytest.mark.parametrize("context", list(CONTEXTS))
def test_context_changes_output_then_restores_bit_for_bit(tiny_model, tiny_tokens, context) -> None:
    before = snapshot(tiny_model)
    original = run(tiny_model, tiny_tokens)
    with CONTEXTS[context](tiny_model) as yielded:
        assert yielded is tiny_model
        changed = run(tiny_model, tiny_tokens)
    assert changed.shape == original.shape
    assert (changed - original).abs().max() > 1e-4
    assert torch.equal(run(tiny_model, tiny_tokens), original)
    assert_restored(tiny_model, before)


@pytest.mark.parametrize("context", ["delete_layers", "delete_attention", "swap_layers", "order_repeats"])
def test_context_restores_after_an_exception(tiny_model, tiny_tokens, context) -> None:
    before = snapshot(tiny_model)
    original = run(tiny_model, tiny_tokens)
    with pytest.raises(RuntimeError, match="boom"):
        with CONTEXTS[context](tiny_model):
            assert not torch.equal(run(tiny_model, tiny_tokens), original)
            raise RuntimeError("boom")
    assert torch.equal(run(tiny_model, tiny_tokens), original)
    assert_restored(tiny_model, before)


def test_layer_order_sets_per_slot_config_inside_and_restores_it(tiny_model, architecture) -> None:
    config = tiny_model.original_model.config
    types = list(getattr(config, "layer_types", None) or [])
    order = [3, 0, 0, 2]
    list_name, blocks = layer_list(tiny_model)
    original_blocks = list(blocks)
    with layer_order(tiny_model, order):
        assert config.num_hidden_layers == len(order)
        current = tiny_model.original_model.get_submodule(list_name)
        assert current is not blocks
        assert [id(b) for b in current] == [id(original_blocks[i]) for i in order]
        if architecture == "gemma3":
            assert config.layer_types == [types[i] for i in order]
            assert config.layer_types != types
    assert config.num_hidden_layers == N_LAYERS
    if architecture == "gemma3":
        assert config.layer_types == types == ["sliding_attention", "full_attention"] * 2


@pytest.mark.parametrize("architecture", ["gemma3"])  # the only one with per-slot attention types
def test_swap_moves_gemma_attention_type_with_the_layer(tiny_model, architecture, tiny_tokens) -> None:
    config = tiny_model.original_model.config
    original = run(tiny_model, tiny_tokens)
    with swap_layers(tiny_model, 0, 1):
        assert config.layer_types[:2] == ["full_attention", "sliding_attention"]
        swapped = run(tiny_model, tiny_tokens)
    # Same swap but with the slot types left unpermuted (what a naive reorder does) differs.
    name, blocks = layer_list(tiny_model)
    parent_name, _, attribute = name.rpartition(".")
    parent = tiny_model.original_model.get_submodule(parent_name)
    setattr(parent, attribute, nn.ModuleList([blocks[1], blocks[0], blocks[2], blocks[3]]))
    try:
        naive = run(tiny_model, tiny_tokens)
    finally:
        setattr(parent, attribute, blocks)
    assert (naive - swapped).abs().max() > 1e-4
    assert torch.equal(run(tiny_model, tiny_tokens), original)


# ---------------------------------------------------------------- failures while installing


@pytest.mark.parametrize("failing", ["num_hidden_layers", "block_list"])
def test_a_failed_install_leaves_the_model_intact(tiny_model, tiny_tokens, failing, monkeypatch) -> None:
    """A config attribute that refuses to be set, or a block list that cannot be built, half-way
    through installing an order: the model runs as before and the next order installs."""
    check_failed_install(tiny_model, tiny_tokens, failing, monkeypatch)


@pytest.mark.parametrize("architecture", ["gemma3"])  # the only one with per-slot layer types
def test_a_failed_layer_types_install_leaves_the_model_intact(tiny_model, tiny_tokens, monkeypatch) -> None:
    """The same when setting Gemma 3's per-slot ``config.layer_types`` fails."""
    check_failed_install(tiny_model, tiny_tokens, "layer_types", monkeypatch)


def check_failed_install(tiny_model, tiny_tokens, failing: str, monkeypatch) -> None:
    config = tiny_model.original_model.config
    before = snapshot(tiny_model)
    original = run(tiny_model, tiny_tokens)
    with layer_order(tiny_model, [0, 2, 1, 3]):
        reordered = run(tiny_model, tiny_tokens)
    if failing == "block_list":

        def refuse(self, *args, **kwargs):
            raise RuntimeError("injected failure")

        monkeypatch.setattr(nn.ModuleList, "__init__", refuse)
    else:
        real_setattr = type(config).__setattr__

        def refuse(self, key, value):
            if key == failing:
                raise RuntimeError("injected failure")
            real_setattr(self, key, value)

        monkeypatch.setattr(type(config), "__setattr__", refuse)
    with pytest.raises(RuntimeError, match="injected failure"):
        with layer_order(tiny_model, [0, 2, 1, 3]):
            pytest.fail("the body must not run when installing failed")
    monkeypatch.undo()
    assert_restored(tiny_model, before)
    assert torch.equal(run(tiny_model, tiny_tokens), original)
    with layer_order(tiny_model, [0, 2, 1, 3]):  # not left "already active"
        assert torch.equal(run(tiny_model, tiny_tokens), reordered)
    assert_restored(tiny_model, before)


# ---------------------------------------------------------------- equivalences


def test_deletion_hooks_equal_delete_layers(tiny_model, tiny_tokens) -> None:
    for layer in range(N_LAYERS):
        with delete_layers(tiny_model, [layer]):
            expected = run(tiny_model, tiny_tokens)
        with torch.inference_mode():
            got = tiny_model.run_with_hooks(tiny_tokens, fwd_hooks=layer_deletion_hooks([layer]))
        assert torch.equal(got, expected)


def test_delete_layers_equals_running_the_other_layers(tiny_model, tiny_tokens) -> None:
    for layers in ([0], [1], [3], [0, 2]):
        with delete_layers(tiny_model, layers):
            deleted = run(tiny_model, tiny_tokens)
        with layer_order(tiny_model, [i for i in range(N_LAYERS) if i not in layers]):
            skipped = run(tiny_model, tiny_tokens)
        assert (deleted - skipped).abs().max() <= 1e-5


def test_deleting_attention_and_mlp_equals_deleting_the_layer(tiny_model, tiny_tokens) -> None:
    for layer in (0, 2):
        with delete_layers(tiny_model, layer):
            expected = run(tiny_model, tiny_tokens)
        with delete_attention(tiny_model, layer), delete_mlp(tiny_model, layer):
            both = run(tiny_model, tiny_tokens)
        with delete_attention(tiny_model, layer):
            attention_only = run(tiny_model, tiny_tokens)
        assert (both - expected).abs().max() <= 1e-5
        assert (attention_only - expected).abs().max() > 1e-4


def test_swap_equals_the_explicit_order(tiny_model, tiny_tokens) -> None:
    with swap_layers(tiny_model, 2, 1):
        swapped = run(tiny_model, tiny_tokens)
    with layer_order(tiny_model, [0, 2, 1, 3]):
        ordered = run(tiny_model, tiny_tokens)
    assert torch.equal(swapped, ordered)


# ---------------------------------------------------------------- user hooks


def test_user_hook_added_before_fires_inside_and_survives(tiny_model, tiny_tokens) -> None:
    calls: list[str] = []
    tiny_model.add_hook("blocks.2.hook_resid_post", lambda x, hook: calls.append("user"))
    try:
        for context in ("delete_layers", "delete_attention", "delete_mlp", "swap_layers", "order_subset"):
            calls.clear()
            with CONTEXTS[context](tiny_model):
                run(tiny_model, tiny_tokens)
            assert calls == ["user"], context
            calls.clear()
            run(tiny_model, tiny_tokens)
            assert calls == ["user"], f"user hook detached by {context}"
    finally:
        tiny_model.reset_hooks()


def test_user_hook_added_inside_stays_attached(tiny_model, tiny_tokens) -> None:
    calls: list[int] = []
    try:
        with delete_layers(tiny_model, [1]):
            tiny_model.add_hook("blocks.3.hook_resid_pre", lambda x, hook: calls.append(1))
            run(tiny_model, tiny_tokens)
        assert calls == [1]
        run(tiny_model, tiny_tokens)
        assert calls == [1, 1]
    finally:
        tiny_model.reset_hooks()


def test_user_hooks_context_composes_with_ours(tiny_model, tiny_tokens) -> None:
    """A modifying user hook acts together with our deletion, inside and around it."""
    user = [("blocks.3.hook_mlp_out", lambda x, hook: torch.zeros_like(x))]
    with torch.inference_mode():
        expected = tiny_model.run_with_hooks(tiny_tokens, fwd_hooks=user + layer_deletion_hooks([0]))
        user_only = tiny_model.run_with_hooks(tiny_tokens, fwd_hooks=user)
    with tiny_model.hooks(fwd_hooks=user):
        with delete_layers(tiny_model, [0]):
            outer = run(tiny_model, tiny_tokens)
        # our context left, the user's hook still acts
        assert torch.equal(run(tiny_model, tiny_tokens), user_only)
    with delete_layers(tiny_model, [0]), tiny_model.hooks(fwd_hooks=user):
        inner = run(tiny_model, tiny_tokens)
    assert torch.equal(outer, expected)
    assert torch.equal(inner, expected)
    assert count_hooks(tiny_model) == 0


def test_hook_names_stay_with_their_layer_under_swap(tiny_model, tiny_tokens) -> None:
    names = [
        "blocks.0.hook_resid_pre",
        "blocks.1.hook_resid_pre",
        "blocks.1.hook_resid_post",
        "blocks.0.hook_resid_post",
        "blocks.2.hook_resid_pre",
    ]
    with torch.inference_mode():
        _, base = tiny_model.run_with_cache(tiny_tokens, names_filter=names)
        with swap_layers(tiny_model, 0, 1):
            _, swapped = tiny_model.run_with_cache(tiny_tokens, names_filter=names)
    # Layer 1 runs first: its input is the embedding, its output feeds layer 0.
    assert torch.equal(swapped["blocks.1.hook_resid_pre"], base["blocks.0.hook_resid_pre"])
    assert torch.equal(swapped["blocks.1.hook_resid_post"], swapped["blocks.0.hook_resid_pre"])
    assert torch.equal(swapped["blocks.0.hook_resid_post"], swapped["blocks.2.hook_resid_pre"])
    assert not torch.allclose(swapped["blocks.1.hook_resid_post"], base["blocks.1.hook_resid_post"])
    assert not torch.allclose(swapped["blocks.0.hook_resid_pre"], base["blocks.0.hook_resid_pre"])


# ---------------------------------------------------------------- bad specs


@pytest.fixture(scope="module")
def llama(tiny_tokenizer):
    return bridge_from_hf(
        tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer, compatibility_mode=False
    )


RANGE = "0 to 3"
BAD_LAYER_SETS = [
    (-1, RANGE),
    (N_LAYERS, RANGE),
    ([0, N_LAYERS], RANGE),
    ([-1], RANGE),
    (1.5, None),
    ("1", None),
    (True, None),
    ([True], RANGE),
    ([1.5], RANGE),
    (["1"], RANGE),
    ([], "empty"),
    ([1, 1], "repeat"),
    (None, None),
]


@pytest.mark.parametrize("function", [delete_layers, delete_attention, delete_mlp])
@pytest.mark.parametrize(("spec", "message"), BAD_LAYER_SETS)
@pytest.mark.usefixtures("unchecked_shapes")  # malformed on purpose: our ConfigError must answer
def test_bad_layer_sets_raise(llama, function, spec, message) -> None:
    before = snapshot(llama)
    with pytest.raises(ConfigError, match=message) as error:
        with function(llama, spec):
            pass
    assert isinstance(error.value, ValueError)
    assert_restored(llama, before)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (1, 1, "itself"),
        (-1, 0, RANGE),
        (0, N_LAYERS, RANGE),
        (1.5, 0, RANGE),
        ("1", 0, RANGE),
        (True, 0, RANGE),
        (0, None, RANGE),
    ],
)
@pytest.mark.usefixtures("unchecked_shapes")  # malformed on purpose: our ConfigError must answer
def test_bad_swaps_raise(llama, first, second, message) -> None:
    before = snapshot(llama)
    with pytest.raises(ConfigError, match=message):
        with swap_layers(llama, first, second):
            pass
    assert_restored(llama, before)


@pytest.mark.parametrize(
    ("order", "kwargs", "message"),
    [
        ([], {}, "empty"),
        ([-1], {}, RANGE),
        ([0, N_LAYERS], {}, RANGE),
        ([1.5], {}, RANGE),
        (["1"], {}, RANGE),
        ([True, 1], {}, RANGE),
        ([[0, 1]], {}, RANGE),
        ([0, 1, 1], {"allow_repeats": False}, "repeat"),
        ("0123", {}, None),
        (3, {}, None),
    ],
)
@pytest.mark.usefixtures("unchecked_shapes")  # malformed on purpose: our ConfigError must answer
def test_bad_orders_raise(llama, order, kwargs, message) -> None:
    before = snapshot(llama)
    with pytest.raises(ConfigError, match=message):
        with layer_order(llama, order, **kwargs):
            pass
    assert_restored(llama, before)


def test_repeats_are_allowed_by_default_and_numpy_ints_accepted(llama, tiny_tokens) -> None:
    import numpy as np

    with layer_order(llama, [np.int64(0), 1, 1, 2, 3], allow_repeats=True):
        pass
    with delete_layers(llama, np.int64(2)) as model:
        assert model is llama


@pytest.mark.parametrize("inner", ["order_subset", "swap_layers"])
def test_nested_layer_orders_raise_and_leave_outer_intact(llama, tiny_tokens, inner) -> None:
    before = snapshot(llama)
    original = run(llama, tiny_tokens)
    with layer_order(llama, [0, 2, 1, 3]):
        reordered = run(llama, tiny_tokens)
        with pytest.raises(ConfigError, match="already active"):
            with CONTEXTS[inner](llama):
                pass
        # the outer order is still in force
        assert torch.equal(run(llama, tiny_tokens), reordered)
    assert torch.equal(run(llama, tiny_tokens), original)
    assert_restored(llama, before)


# ---------------------------------------------------------------- property


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.lists(st.integers(0, N_LAYERS - 1), min_size=1, max_size=2 * N_LAYERS))
def test_any_order_restores_the_model(tiny_model, tiny_tokens, order) -> None:
    tokens = tiny_tokens[:1]
    before = snapshot(tiny_model)
    original = run(tiny_model, tokens)
    with layer_order(tiny_model, order):
        assert tiny_model.original_model.config.num_hidden_layers == len(order)
        inside = run(tiny_model, tokens)
    assert torch.isfinite(inside).all()
    if order != list(range(N_LAYERS)):
        assert not torch.equal(inside, original)
    assert torch.equal(run(tiny_model, tokens), original)
    assert_restored(tiny_model, before)

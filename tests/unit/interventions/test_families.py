"""Unit tests of Intervention's kinds and of stages_of_inference.interventions.families, against orders by hand."""

from __future__ import annotations

import json

import pytest

from stages_of_inference.errors import ConfigError
from stages_of_inference.interventions import (
    Intervention,
    check_interventions,
    intervention_family,
    load_interventions,
    resolve_interventions,
    start_slot,
)
from tests.tiny_models import N_LAYERS

assert N_LAYERS == 4, "the orders below are written for 4 layers"

# label -> (the layers a 4-layer model runs, the table's layer, the first slot the sweep runs), by hand
BLOCKS = {
    "delete layers 0-1": ([2, 3], 0, 0),
    "delete layers 1-2": ([0, 3], 1, 1),
    "delete layers 2-3": ([0, 1], 2, 1),  # nothing left to run after slot 1: rerun layer 1 from its input
    "delete layers 0-2": ([3], 0, 0),
    "delete layers 1-3": ([0], 1, 0),
}
COMPONENTS = {
    **{f"delete attention of layer {i}": ([0, 1, 2, 3], i, i) for i in range(4)},
    **{f"delete MLP of layer {i}": ([0, 1, 2, 3], i, i) for i in range(4)},
    "delete layer 0": ([1, 2, 3], 0, 0),
    "delete layer 1": ([0, 2, 3], 1, 1),
    "delete layer 2": ([0, 1, 3], 2, 2),
    "delete layer 3": ([0, 1, 2], 3, 2),
}
SWAPS = {
    "swap layers 0-1": ([1, 0, 2, 3], 0, 0),
    "swap layers 0-2": ([2, 1, 0, 3], 0, 0),
    "swap layers 0-3": ([3, 1, 2, 0], 0, 0),
    "swap layers 1-2": ([0, 2, 1, 3], 1, 1),
    "swap layers 1-3": ([0, 3, 2, 1], 1, 1),
    "swap layers 2-3": ([0, 1, 3, 2], 2, 2),
}
REPEATS = {
    "repeat layer 0": ([0, 0, 1, 2, 3], 0, 1),
    "repeat layer 1": ([0, 1, 1, 2, 3], 1, 2),
    "repeat layer 2": ([0, 1, 2, 2, 3], 2, 3),
    "repeat layer 3": ([0, 1, 2, 3, 3], 3, 3),  # slot 4 has no cached input: start at slot 3
    "repeat layers 0-1": ([0, 1, 0, 1, 2, 3], 0, 2),
    "repeat layers 1-2": ([0, 1, 2, 1, 2, 3], 1, 3),
    "repeat layers 2-3": ([0, 1, 2, 3, 2, 3], 2, 3),
    "repeat layers 0-2": ([0, 1, 2, 0, 1, 2, 3], 0, 3),
    "repeat layers 1-3": ([0, 1, 2, 3, 1, 2, 3], 1, 3),
    "repeat layers 0-3": ([0, 1, 2, 3, 0, 1, 2, 3], 0, 3),
}
FAMILIES = {"blocks": BLOCKS, "components": COMPONENTS, "swaps-all": SWAPS, "repeats": REPEATS}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_orders_are_the_hand_written_ones(family: str) -> None:
    expected = FAMILIES[family]
    got = intervention_family(family, N_LAYERS)
    assert [i.label for i in got] == list(expected)
    for intervention in got:
        order, layer, start = expected[intervention.label]
        assert intervention.order(N_LAYERS) == order, intervention.label
        assert intervention.layer == layer, intervention.label
        assert start_slot(intervention, N_LAYERS) == start, intervention.label


def test_components_name_the_hooks_they_need() -> None:
    hooks = {i.label: [name for name, _ in i.hooks()] for i in intervention_family("components", N_LAYERS)}
    assert hooks["delete attention of layer 2"] == ["blocks.2.hook_attn_out"]
    assert hooks["delete MLP of layer 0"] == ["blocks.0.hook_mlp_out"]
    assert hooks["delete layer 1"] == []


def test_default_family_is_the_default_sweep() -> None:
    assert [i.label for i in intervention_family("default", N_LAYERS)] == [
        "delete layer 0",
        "delete layer 1",
        "delete layer 2",
        "delete layer 3",
        "swap layers 0-1",
        "swap layers 1-2",
        "swap layers 2-3",
    ]
    assert [(i.kind, i.layer) for i in resolve_interventions("default", N_LAYERS)] == [
        ("delete", 0),
        ("delete", 1),
        ("delete", 2),
        ("delete", 3),
        ("swap", 0),
        ("swap", 1),
        ("swap", 2),
    ]


def test_family_options() -> None:
    assert [i.label for i in intervention_family("blocks", N_LAYERS, max_width=2)] == [
        "delete layers 0-1",
        "delete layers 1-2",
        "delete layers 2-3",
    ]
    twice = intervention_family("repeats", N_LAYERS, max_width=2, repeats=2)
    assert [i.label for i in twice][::3] == ["repeat layer 0 x2", "repeat layer 3 x2", "repeat layers 2-3 x2"]
    assert twice[4].order(N_LAYERS) == [0, 1, 0, 1, 0, 1, 2, 3]
    assert len(intervention_family("blocks", 30)) == 29 + 28 + 27
    assert len(intervention_family("swaps-all", 18)) == 18 * 17 // 2


def test_the_named_kinds_written_as_orders_keep_their_layer() -> None:
    """An explicit order is filed under the layer the named kind with the same order reports."""
    for family in ("blocks", "swaps-all", "repeats", "default"):
        for intervention in intervention_family(family, N_LAYERS):
            explicit = Intervention.of_order(intervention.order(N_LAYERS))
            assert explicit.check(N_LAYERS).layer == intervention.layer, intervention.label


def test_values_are_canonical_and_hashable() -> None:
    assert Intervention("swap", 1) == Intervention("swap", 1, other=2)
    assert Intervention("repeat", 2) == Intervention("repeat", 2, 2, 1)
    assert Intervention.of_order([0, 2, 1, 3]) == Intervention("order", 1, layers=(0, 2, 1, 3))
    assert len({Intervention("swap", 1), Intervention("swap", 1, 2), Intervention.of_order([0, 2, 1, 3])}) == 2
    assert Intervention("delete", 2).label == "delete layer 2"  # the default kinds are unchanged
    assert Intervention("swap", 2).label == "swap layers 2-3"
    assert (Intervention("swap", 2).kind, Intervention("swap", 2).layer) == ("swap", 2)


# ---------------------------------------------------------------- JSON files


def write(tmp_path, content) -> str:
    path = tmp_path / "orders.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_load_interventions_reads_orders(tmp_path) -> None:
    path = write(tmp_path, [[0, 2, 1, 3], [3, 2, 1, 0], [0, 1, 1, 2, 3], [0, 2]])
    loaded = load_interventions(path, N_LAYERS)
    assert [i.label for i in loaded] == ["order 0,2,1,3", "order 3,2,1,0", "order 0,1,1,2,3", "order 0,2"]
    assert [i.order(N_LAYERS) for i in loaded] == [[0, 2, 1, 3], [3, 2, 1, 0], [0, 1, 1, 2, 3], [0, 2]]
    assert [i.layer for i in loaded] == [1, 0, 1, 1]
    assert resolve_interventions(path, N_LAYERS) == loaded


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[[0, 1", "is not JSON"),
        ({"orders": [[0, 1]]}, "non-empty JSON list of orders"),
        ([], "non-empty JSON list of orders"),
        ([[0, 2, 1, 3], 5], r"entry 1 \(5\) must be a list of integer layer indices"),
        ([[0, 2, 1, 3], [0, "1", 2]], r"entry 1 \(\[0, \"1\", 2\]\) must be a list of integer"),
        ([[0, 1.0, 2]], r"entry 0 .* must be a list of integer"),
        ([[0, True, 2]], r"entry 0 .* must be a list of integer"),
        ([[0, 2], [0, 4, 1]], r"entry 1 \(\[0, 4, 1\]\): layer in the order 4 is out of range.*0 to 3"),
        ([[0, -1]], r"entry 0 \(\[0, -1\]\): layer in the order -1 is out of range"),
        ([[]], r"entry 0 \(\[\]\): an explicit layer order is empty"),
        ([[0, 1, 2, 3]], r"entry 0 .*is the original order and changes nothing"),
        ([[0, 2], [1, 0, 2, 3], [0, 2]], "'order 0,2' is listed twice"),
    ],
)
def test_bad_files_raise_naming_the_entry(tmp_path, content, message) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        load_interventions(write(tmp_path, content), N_LAYERS)
    assert "\n" not in str(error.value)


def test_missing_file_and_unknown_family_raise(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read the interventions file"):
        load_interventions(tmp_path / "absent.json", N_LAYERS)
    with pytest.raises(ConfigError, match=r"'swaps' is neither a family \(default, blocks, components, swaps-all"):
        resolve_interventions("swaps", N_LAYERS)
    with pytest.raises(ConfigError, match="unknown intervention family 'swaps'"):
        intervention_family("swaps", N_LAYERS)


# ---------------------------------------------------------------- bad values


@pytest.mark.parametrize(
    ("family", "options", "message"),
    [
        ("blocks", {"max_width": 1}, r"max_width \(deleted blocks\) must be an integer from 2 to 3"),
        ("blocks", {"max_width": 4}, "from 2 to 3 for 4 layers, got 4"),
        ("blocks", {"max_width": 2.0}, "got 2.0"),
        ("repeats", {"max_width": 0}, "from 1 to 4"),
        ("repeats", {"max_width": 5}, "from 1 to 4"),
        ("repeats", {"repeats": 0}, "a repeat count must be an integer of at least 1, got 0"),
        ("repeats", {"repeats": 1.5}, "a repeat count must be an integer of at least 1, got 1.5"),
        ("swaps-all", {"max_width": 2}, "'swaps-all' family takes no options, not max_width"),
        ("blocks", {"width": 2}, "'blocks' family takes options max_width, not width"),
    ],
)
@pytest.mark.usefixtures("unchecked_shapes")  # malformed on purpose: our ConfigError must answer
def test_bad_family_options_raise(family, options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        intervention_family(family, N_LAYERS, **options)


def test_a_model_too_shallow_for_blocks_raises() -> None:
    with pytest.raises(ConfigError, match="a 2-layer model has no deleted blocks of 2 or more layers"):
        intervention_family("blocks", 2)


@pytest.mark.parametrize(
    ("intervention", "message"),
    [
        (Intervention("swap", 2, other=2), "cannot swap layer 2 with itself"),
        (Intervention("swap", 3, other=0), r"name the lower layer first, Intervention\('swap', 0, 3\)"),
        (Intervention("swap", 0, other=4), "second swap layer 4 is out of range"),
        (Intervention("swap", 3), "swap layer 3 is out of range"),
        (Intervention("swap", 1, repeats=2), "'swap' intervention takes no repeats"),
        (Intervention("delete", 1, other=2), r"takes no other \(for layers i..j use Intervention\('delete_block'"),
        (Intervention("delete_block", 1, 1), r"at least 2 layers, got 1-1; for one layer use Intervention\('delete'"),
        (Intervention("delete_block", 2, 1), "name the lower layer first"),
        (Intervention("delete_block", 2, 4), "second block layer 4 is out of range"),
        (Intervention("delete_block", 0, 3), "delete layers 0-3 deletes every layer"),
        (Intervention("delete_block", 1), "needs a second layer"),
        (Intervention("delete_attn", 4), "delete_attn layer 4 is out of range"),
        (Intervention("delete_mlp", -1), "delete_mlp layer -1 is out of range"),
        (Intervention("delete_mlp", 1, other=2), "'delete_mlp' intervention takes no other"),
        (Intervention("repeat", 1, 2, 0), "repeat count must be an integer of at least 1, got 0"),
        (Intervention("repeat", 2, 1), "name the lower layer first"),
        (Intervention("repeat", 1, 4), "second repeat layer 4 is out of range"),
        (Intervention("order", 0, layers=(0, 2, 1, 3)), r"filed under layer 1, not 0; build it with .*of_order"),
        (Intervention.of_order([0, 1, 2, 3]), "is the original order and changes nothing"),
        (Intervention.of_order([]), "an explicit layer order is empty"),
        (lambda: Intervention.of_order([0, "a"]), "layer in the order must be an integer"),
        (Intervention("rotate", 0), "unknown intervention 'rotate': use one of 'delete', 'swap', 'delete_block'"),
    ],
)
@pytest.mark.usefixtures("unchecked_shapes")  # a str layer must reach our own check
def test_bad_interventions_raise_one_line(intervention, message) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        (intervention() if callable(intervention) else intervention).check(N_LAYERS)
    assert "\n" not in str(error.value)


def test_the_same_intervention_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="'swap layers 1-2' is listed twice"):
        check_interventions([Intervention("swap", 1), Intervention("delete", 0), Intervention("swap", 1, 2)], N_LAYERS)

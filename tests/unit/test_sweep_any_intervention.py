"""Every kind of intervention through the robustness sweep, on tiny models of four architectures.

The reference runs one full forward per intervention with the library's context
managers fed the orders written out by hand in test_intervention_families (never
Intervention.order, the code under test), or with delete_attention / delete_mlp for
component deletions, and computes the metrics with token_metrics.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from stages_of_inference.corpus import load_corpus
from stages_of_inference.errors import ConfigError, ResultsError
from stages_of_inference.interventions import (
    Intervention,
    delete_attention,
    delete_mlp,
    final_residual,
    intervened_residual,
    intervention_family,
    layer_order,
)
from stages_of_inference.models import bridge_from_hf
from stages_of_inference.scoring.decode import unembed
from stages_of_inference.scoring.metrics import token_metrics
from tests.tiny_models import N_LAYERS, tiny_hf_model
from tests.unit.interventions.test_families import FAMILIES
from tests.unit.test_sweep import METRIC_COLUMNS, TOKEN_METRIC_OF, partly_predictable, sharpened, sweep

pytestmark = pytest.mark.usefixtures("single_thread")

# The columns of the sweep table before general interventions, in their order.
MAIN_METRICS = [
    "kl",
    "top1_agreement",
    "accuracy",
    "baseline_accuracy",
    "loss",
    "baseline_loss",
    "entropy_bits",
    "baseline_entropy_bits",
    "relative_accuracy",
]
MAIN_COLUMNS = [
    "intervention",
    "layer",
    "relative_depth",
    "n_tokens",
    "n_sequences",
    *[name for column in MAIN_METRICS for name in (column, f"{column}_ci_low", f"{column}_ci_high")],
]
EXPLICIT = {  # label -> the order, by hand
    "order 3,2,1,0": [3, 2, 1, 0],
    "order 0,2,2,1": [0, 2, 2, 1],
    "order 1,3": [1, 3],
}
EXPECTED_ORDERS = {label: order for family in FAMILIES.values() for label, (order, _, _) in family.items()}
EXPECTED_ORDERS.update(EXPLICIT)
EXPECTED_LAYERS = {label: layer for family in FAMILIES.values() for label, (_, layer, _) in family.items()}
EXPECTED_LAYERS.update({"order 3,2,1,0": 0, "order 0,2,2,1": 1, "order 1,3": 0})
REPEAT_TWICE = Intervention("repeat", 1, 2, 2)
EXPECTED_ORDERS[REPEAT_TWICE.label] = [0, 1, 2, 1, 2, 1, 2, 3]
EXPECTED_LAYERS[REPEAT_TWICE.label] = 1


def every_kind() -> list[Intervention]:
    family = [i for name in FAMILIES for i in intervention_family(name, N_LAYERS)]
    return [*family, *(Intervention.of_order(order) for order in EXPLICIT.values()), REPEAT_TWICE]


def reference_context(model, label: str):
    """The full-forward context for an intervention, from the hand-written tables only."""
    for name, context in (("delete attention of layer ", delete_attention), ("delete MLP of layer ", delete_mlp)):
        if label.startswith(name):
            return context(model, [int(label.removeprefix(name))])
    return layer_order(model, EXPECTED_ORDERS[label])


def straightforward(model, tokens, labels: list[str]) -> pd.DataFrame:
    rows = []
    with torch.inference_mode():
        base = model(tokens)
        for label in labels:
            with reference_context(model, label):
                logits = model(tokens)
            metrics = token_metrics(base, logits, tokens)
            row = {"label": label}
            for column, metric in TOKEN_METRIC_OF.items():
                row[column] = float(metrics[metric].double().mean())
            row["relative_accuracy"] = row["accuracy"] / row["baseline_accuracy"]
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture
def model(tiny_model):
    return sharpened(tiny_model)


@pytest.fixture
def tokens(model, tiny_tokens):
    return partly_predictable(model, tiny_tokens)


@pytest.fixture(scope="module")
def llama(tiny_tokenizer):
    return sharpened(
        bridge_from_hf(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer, compatibility_mode=False)
    )


@pytest.fixture(scope="module")
def llama_tokens(llama, tiny_tokenizer):
    return partly_predictable(llama, load_corpus("python-docs", tiny_tokenizer, n_tokens=72, seq_len=24, seed=0))


def test_every_kind_through_the_sweep_equals_full_forwards(model, tokens) -> None:
    chosen = every_kind()
    assert len(chosen) == 5 + 12 + 6 + 10 + 3 + 1
    table = sweep(model, tokens, chosen, batch_size=2, n_bootstrap=0)
    expected = straightforward(model, tokens, [i.label for i in chosen])
    assert table.label.tolist() == expected.label.tolist()
    assert table.intervention.tolist() == [i.kind for i in chosen]
    assert table.layer.tolist() == [EXPECTED_LAYERS[label] for label in table.label]
    np.testing.assert_allclose(table.relative_depth, table.layer / (N_LAYERS - 1))
    assert [json.loads(o) for o in table.order] == [
        [0, 1, 2, 3]
        if label.startswith("delete attention") or label.startswith("delete MLP")
        else EXPECTED_ORDERS[label]
        for label in table.label
    ]
    for column in METRIC_COLUMNS:
        np.testing.assert_allclose(table[column], expected[column], rtol=0, atol=1e-5, err_msg=column)
    # each intervention changes the model, so no comparison is between two zeros
    assert (table.kl > 1e-4).all(), table.loc[table.kl <= 1e-4, "label"].tolist()


def test_sweep_with_new_kinds_leaves_the_model_unchanged(model, tokens) -> None:
    with torch.inference_mode():
        before = model(tokens)
        sweep(model, tokens, every_kind(), n_bootstrap=0)
        assert torch.equal(model(tokens), before)
    assert sum(len(hp._forward_hooks) for hp in model.hook_dict.values()) == 0


def test_the_default_table_keeps_its_columns_and_adds_label_and_order(model, tokens) -> None:
    table = sweep(model, tokens)
    assert table.columns.tolist() == [*MAIN_COLUMNS, "label", "order"]
    assert table.label.tolist()[:2] == ["delete layer 0", "delete layer 1"]
    assert json.loads(table.order.iloc[-1]) == [0, 1, 3, 2]
    # the default list given explicitly is the same table, bit for bit
    pd.testing.assert_frame_equal(
        table, sweep(model, tokens, intervention_family("default", N_LAYERS)), check_exact=True
    )


def test_same_kind_and_layer_rows_are_kept_apart(llama, llama_tokens) -> None:
    """Blocks of two widths from one layer share kind and layer; the label tells their rows apart."""
    two = [Intervention("delete_block", 1, 2), Intervention("delete_block", 1, 3)]
    table = sweep(llama, llama_tokens, two, n_bootstrap=0)
    alone = [sweep(llama, llama_tokens, [i], n_bootstrap=0) for i in two]
    pd.testing.assert_frame_equal(table, pd.concat(alone, ignore_index=True), check_exact=True)
    assert table.kl.iloc[0] != table.kl.iloc[1]


def test_a_listed_twice_intervention_is_refused(llama, llama_tokens, tmp_path) -> None:
    with pytest.raises(ConfigError, match="'swap layers 0-1' is listed twice"):
        sweep(llama, llama_tokens, [Intervention("swap", 0), Intervention("swap", 0, other=1)], checkpoint_dir=tmp_path)
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- checkpoints

MIXED = [
    Intervention("delete_block", 1, 2),
    Intervention("delete_mlp", 0),
    Intervention("swap", 0, 3),
    Intervention("repeat", 3),
    Intervention.of_order([3, 2, 1, 0]),
]


def test_checkpoints_of_new_kinds_resume_to_the_same_table(llama, llama_tokens, tmp_path) -> None:
    first = sweep(llama, llama_tokens, MIXED, batch_size=1, checkpoint_dir=tmp_path)
    shards = sorted(tmp_path.glob("*.parquet"))
    assert len(shards) == 3
    stored = pq.read_table(shards[0])
    provenance = json.loads(stored.schema.metadata[b"stages_of_inference.shard"])
    assert provenance["interventions"] == [
        "delete layers 1-2",
        "delete MLP of layer 0",
        "swap layers 0-3",
        "repeat layer 3",
        "order 3,2,1,0",
    ]
    assert stored.to_pandas().label.tolist() == provenance["interventions"]  # one window per shard
    shards[2].unlink()
    resumed = sweep(llama, llama_tokens, MIXED, batch_size=1, checkpoint_dir=tmp_path)
    pd.testing.assert_frame_equal(first, resumed, check_exact=True)
    pd.testing.assert_frame_equal(first, sweep(llama, llama_tokens, MIXED, batch_size=1), check_exact=True)
    with pytest.raises(ResultsError, match="new: repeat layer 3 x2 — gone: repeat layer 3"):
        sweep(
            llama,
            llama_tokens,
            [*MIXED[:3], Intervention("repeat", 3, 3, 2), MIXED[4]],
            batch_size=1,
            checkpoint_dir=tmp_path,
        )


def test_shards_of_the_previous_format_are_refused(llama, llama_tokens, tmp_path) -> None:
    """Format-1 shards have no label column: the provenance says so before their rows are read."""
    sweep(llama, llama_tokens, MIXED[:1], batch_size=3, checkpoint_dir=tmp_path)
    path = tmp_path / "batch-00000.parquet"
    stored = pq.read_table(path)
    provenance = json.loads(stored.schema.metadata[b"stages_of_inference.shard"])
    provenance["shard_format"] = 1
    old = stored.drop(["label"]).replace_schema_metadata({b"stages_of_inference.shard": json.dumps(provenance)})
    pq.write_table(old, path)
    with pytest.raises(ResultsError, match="shard_format: 1 there, 2 now"):
        sweep(llama, llama_tokens, MIXED[:1], batch_size=3, checkpoint_dir=tmp_path)


def test_the_sweep_engine_is_exact(model, tokens) -> None:
    """Starting at start_slot from the cached residual gives the full forward's logits bit for bit
    (measured 0.0 on every kind and architecture, raw and compatibility mode)."""
    with torch.inference_mode():
        _, resid_pres = final_residual(model, tokens, cache_resid_pre=True)
        for intervention in every_kind():
            final = intervened_residual(model, tokens, intervention, resid_pres)
            with reference_context(model, intervention.label):
                full = model(tokens)
            assert torch.equal(unembed(model, final), full), intervention.label

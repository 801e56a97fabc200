"""Unit tests of stages_of_inference.sweep on tiny random models of four architectures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from transformer_lens.model_bridge import TransformerBridge

from stages_of_inference.errors import ConfigError, ResultsError
from stages_of_inference.interventions import (
    Intervention,
    default_interventions,
    layer_order,
)
from stages_of_inference.models import bridge_from_hf
from stages_of_inference.scoring.metrics import token_metrics
from stages_of_inference.sweep import BatchWork, robustness_sweep, sweep_batch
from tests.tiny_models import N_LAYERS, tiny_hf_model

METRIC_COLUMNS = [
    "kl",
    "top1_agreement",
    "accuracy",
    "baseline_accuracy",
    "relative_accuracy",
    "loss",
    "baseline_loss",
    "entropy_bits",
    "baseline_entropy_bits",
]
REQUIRED = ["intervention", "layer", "relative_depth", "n_tokens", *METRIC_COLUMNS]
BASELINE_COLUMNS = ["baseline_accuracy", "baseline_loss", "baseline_entropy_bits"]
# summary column -> per-token metric of token_metrics
TOKEN_METRIC_OF = {
    "kl": "kl",
    "top1_agreement": "agreement",
    "accuracy": "correct",
    "baseline_accuracy": "baseline_correct",
    "loss": "loss",
    "baseline_loss": "baseline_loss",
    "entropy_bits": "entropy_bits",
    "baseline_entropy_bits": "baseline_entropy_bits",
}

# The layers each intervention of a 4-layer model runs, written out by hand: the
# reference below runs these orders, never Intervention.order (the code under test).
EXPECTED_ORDERS = {
    ("delete", 0): [1, 2, 3],
    ("delete", 1): [0, 2, 3],
    ("delete", 2): [0, 1, 3],
    ("delete", 3): [0, 1, 2],
    ("swap", 0): [1, 0, 2, 3],
    ("swap", 1): [0, 2, 1, 3],
    ("swap", 2): [0, 1, 3, 2],
}
assert N_LAYERS == 4, "EXPECTED_ORDERS is written for 4 layers"

pytestmark = pytest.mark.usefixtures("single_thread")


def sharpened(model):
    """Scale the final norm 40x: a random tiny model's next-token distributions are nearly
    uniform (KL ~1e-6 between interventions), which would make every comparison vacuous."""
    norm = model.ln_final.original_component
    with torch.no_grad():
        if "Gemma" in type(norm).__name__:  # Gemma's RMSNorm scales by (1 + weight)
            norm.weight.copy_((1 + norm.weight) * 40 - 1)
        else:
            norm.weight.mul_(40)
    return model


@pytest.fixture(scope="module")
def llama(tiny_tokenizer):
    return sharpened(
        bridge_from_hf(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer, compatibility_mode=False)
    )


@pytest.fixture
def model(tiny_model):
    return sharpened(tiny_model)


@pytest.fixture
def tokens(model, tiny_tokens) -> torch.Tensor:
    """tiny_tokens with every other next token replaced by the model's own greedy prediction.

    A random tiny model never predicts real text, which would leave accuracy 0 and
    relative accuracy undefined; on these windows its baseline accuracy is about 1/2.
    """
    return partly_predictable(model, tiny_tokens)


def partly_predictable(model, tokens: torch.Tensor) -> torch.Tensor:
    tokens = tokens.clone()
    with torch.inference_mode():
        for position in range(1, tokens.shape[1] - 1, 2):
            tokens[:, position + 1] = model(tokens)[:, position].argmax(-1)
    return tokens


@pytest.fixture(scope="module")
def llama_tokens(llama, tiny_tokenizer) -> torch.Tensor:
    from stages_of_inference.corpus import load_corpus

    return partly_predictable(llama, load_corpus("python-docs", tiny_tokenizer, n_tokens=72, seq_len=24, seed=0))


def sweep(model, tokens, interventions=None, **kwargs):
    kwargs.setdefault("n_bootstrap", 50)
    return robustness_sweep(model, tokens, interventions, progress=False, **kwargs)


def straightforward(model, tokens, interventions) -> pd.DataFrame:
    """One full forward per intervention under its hand-written order, metrics via token_metrics."""
    rows = []
    with torch.inference_mode():
        base = model(tokens)
        for intervention in interventions:
            with layer_order(model, EXPECTED_ORDERS[intervention.kind, intervention.layer]):
                logits = model(tokens)
            metrics = token_metrics(base, logits, tokens)
            row = {"intervention": intervention.kind, "layer": intervention.layer}
            for column, metric in TOKEN_METRIC_OF.items():
                row[column] = float(metrics[metric].double().mean())
            assert 0 < row["baseline_accuracy"] < 1
            row["relative_accuracy"] = row["accuracy"] / row["baseline_accuracy"]
            row["n_tokens"] = metrics["kl"].numel()
            rows.append(row)
    return pd.DataFrame(rows)


def test_intervention_orders_are_the_hand_written_ones() -> None:
    got = {(i.kind, i.layer): i.order(N_LAYERS) for i in default_interventions(N_LAYERS)}
    assert got == EXPECTED_ORDERS
    assert [i.label for i in default_interventions(N_LAYERS)] == [
        "delete layer 0",
        "delete layer 1",
        "delete layer 2",
        "delete layer 3",
        "swap layers 0-1",
        "swap layers 1-2",
        "swap layers 2-3",
    ]


def test_table_shape_columns_and_order(model, tokens) -> None:
    table = sweep(model, tokens)
    assert len(table) == 2 * N_LAYERS - 1
    missing = [c for c in REQUIRED if c not in table.columns]
    missing += [
        f"{c}_{end}" for c in METRIC_COLUMNS for end in ("ci_low", "ci_high") if f"{c}_{end}" not in table.columns
    ]
    assert not missing
    assert table.intervention.tolist() == ["delete"] * N_LAYERS + ["swap"] * (N_LAYERS - 1)
    assert table.layer.tolist() == [*range(N_LAYERS), *range(N_LAYERS - 1)]
    np.testing.assert_allclose(table.relative_depth, table.layer / (N_LAYERS - 1))
    batch, pos = tokens.shape
    assert (table.n_tokens == batch * (pos - 2)).all()
    assert (table.n_sequences == batch).all()
    assert table[METRIC_COLUMNS].notna().all().all()


def test_sweep_equals_the_straightforward_computation(model, tokens) -> None:
    interventions = default_interventions(N_LAYERS)
    table = sweep(model, tokens, batch_size=2)
    expected = straightforward(model, tokens, interventions)
    assert table.intervention.tolist() == expected.intervention.tolist()
    assert table.layer.tolist() == expected.layer.tolist()
    assert table.n_tokens.tolist() == expected.n_tokens.tolist()
    for column in METRIC_COLUMNS:
        np.testing.assert_allclose(table[column], expected[column], rtol=0, atol=1e-5, err_msg=column)
    # the interventions do something, so the comparison is not between two zeros
    assert (table.kl > 1e-3).all()
    assert (table.top1_agreement < 1).any()


def test_baseline_columns_identical_across_rows(model, tokens) -> None:
    table = sweep(model, tokens)
    for column in BASELINE_COLUMNS:
        for suffix in ("", "_ci_low", "_ci_high"):
            assert table[column + suffix].nunique() == 1, column + suffix
    np.testing.assert_allclose(table.relative_accuracy, table.accuracy / table.baseline_accuracy, rtol=1e-12)
    for column in METRIC_COLUMNS:
        assert (table[f"{column}_ci_low"] <= table[column] + 1e-12).all()
        assert (table[column] <= table[f"{column}_ci_high"] + 1e-12).all()


def test_sweep_leaves_the_model_unchanged(model, tokens) -> None:
    with torch.inference_mode():
        before = model(tokens)
        sweep(model, tokens)
        assert torch.equal(model(tokens), before)
    assert sum(len(hp._forward_hooks) for hp in model.hook_dict.values()) == 0


def test_position_chunk_does_not_change_results(model, tokens) -> None:
    one = sweep(model, tokens, position_chunk=1)
    big = sweep(model, tokens, position_chunk=1000)
    # float32 matmuls of different sizes round differently: equal up to ~1e-6
    pd.testing.assert_frame_equal(one, big, check_exact=False, rtol=1e-5, atol=1e-6)


def test_batch_size_does_not_change_means(llama, llama_tokens) -> None:
    one = sweep(llama, llama_tokens, batch_size=1, n_bootstrap=0)
    all_at_once = sweep(llama, llama_tokens, batch_size=3, n_bootstrap=0)
    pd.testing.assert_frame_equal(one, all_at_once, check_exact=False, rtol=1e-6, atol=1e-7)


def test_subset_of_interventions_gives_the_same_rows(llama, llama_tokens) -> None:
    full = sweep(llama, llama_tokens)
    chosen = [Intervention("swap", 2), Intervention("delete", 0)]
    part = sweep(llama, llama_tokens, chosen)
    assert part.intervention.tolist() == ["swap", "delete"]
    wanted = ((full.intervention == "swap") & (full.layer == 2)) | ((full.intervention == "delete") & (full.layer == 0))
    pd.testing.assert_frame_equal(part.reset_index(drop=True), full[wanted].iloc[::-1].reset_index(drop=True))


def test_progress_counts_the_forwards_and_the_scoring_by_their_work(llama, llama_tokens) -> None:
    """The bar ends at the batch's tokens, and keeps moving while the batch is scored (not at 100 % after the forwards)."""
    chosen = [Intervention("delete", 0), Intervention("delete", 3)]
    batch = llama_tokens[:2]
    advances: list[float] = []
    sweep_batch(llama, 0, batch, chosen, position_chunk=10, advance=advances.append)
    work = BatchWork.of(llama, chosen)
    assert work.forwards == (4.0, 3.0, 1.0)  # delete 0 runs blocks 1..3; delete 3 reruns block 2 (prefix.start_slot)
    n_chunks = -(-batch.shape[0] * (batch.shape[1] - 2) // 10)
    assert len(advances) == 3 + n_chunks * 3  # each forward, then each chunk decoded thrice
    assert sum(advances) == pytest.approx(batch.numel())
    scoring = sum(advances[3:])
    assert scoring == pytest.approx(batch.numel() * 3 * work.decode / work.total)


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_rerun_after_losing_a_shard_gives_the_same_table(llama, llama_tokens, tmp_path) -> None:
    first = sweep(llama, llama_tokens, batch_size=1, checkpoint_dir=tmp_path)
    shards = sorted(tmp_path.glob("*.parquet"))
    assert [s.name for s in shards] == ["batch-00000.parquet", "batch-00001.parquet", "batch-00002.parquet"]
    shards[1].unlink()
    second = sweep(llama, llama_tokens, batch_size=1, checkpoint_dir=tmp_path)
    assert shards[1].exists()
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first, sweep(llama, llama_tokens, batch_size=1))


def test_existing_shard_is_read_not_recomputed(llama, llama_tokens, tmp_path) -> None:
    first = sweep(llama, llama_tokens, batch_size=1, checkpoint_dir=tmp_path, n_bootstrap=0)
    path = tmp_path / "batch-00001.parquet"
    stored = pq.read_table(path)
    shard = stored.to_pandas()
    target = (shard.intervention == "delete") & (shard.layer == 2)
    assert target.sum() == 1
    shard.loc[target, "kl"] += 100.0
    # rewritten with its provenance kept, so the sweep takes it for its own
    edited = pa.Table.from_pandas(shard, preserve_index=False).replace_schema_metadata(stored.schema.metadata)
    pq.write_table(edited, path)
    second = sweep(llama, llama_tokens, batch_size=1, checkpoint_dir=tmp_path, n_bootstrap=0)
    row = (second.intervention == "delete") & (second.layer == 2)
    total = float(first.loc[row, "n_tokens"].iloc[0])
    np.testing.assert_allclose(second.loc[row, "kl"], first.loc[row, "kl"] + 100.0 / total, rtol=1e-12)
    pd.testing.assert_frame_equal(second.loc[~row], first.loc[~row])


@pytest.fixture
def finished(llama, llama_tokens, tmp_path):
    """A checkpoint folder holding the three shards of a two-intervention sweep, and their bytes."""
    sweep(llama, llama_tokens, TWO, batch_size=1, checkpoint_dir=tmp_path, n_bootstrap=0)
    return {path: path.read_bytes() for path in sorted(tmp_path.glob("*.parquet"))}


TWO = [Intervention("delete", 1), Intervention("swap", 2)]


def assert_untouched(finished: dict) -> None:
    """Refusing a shard loses no finished work: every shard is still there, byte for byte."""
    assert {path: path.read_bytes() for path in finished} == finished


def test_shards_of_other_tokens_are_refused(llama, llama_tokens, tmp_path, finished) -> None:
    other = llama_tokens.clone()
    other[1, 5] = (other[1, 5] + 1) % llama.cfg.d_vocab
    with pytest.raises(ResultsError, match=r"batch-00001\.parquet .*batch_tokens_sha256") as error:
        sweep(llama, other, TWO, batch_size=1, checkpoint_dir=tmp_path)
    assert "\n" not in str(error.value) and "another checkpoint_dir" in str(error.value)
    assert_untouched(finished)


def test_a_grown_list_of_interventions_is_refused_not_a_crash(llama, llama_tokens, tmp_path, finished) -> None:
    grown = [*TWO, Intervention("delete", 3)]
    with pytest.raises(ResultsError, match="interventions: 2 there, 3 now — new: delete layer 3"):
        sweep(llama, llama_tokens, grown, batch_size=1, checkpoint_dir=tmp_path)
    with pytest.raises(ResultsError, match="gone: swap layers 2-3"):
        sweep(llama, llama_tokens, TWO[:1], batch_size=1, checkpoint_dir=tmp_path)
    assert_untouched(finished)


def test_shards_of_another_model_are_refused(llama_tokens, tiny_tokenizer, tmp_path, finished) -> None:
    other = bridge_from_hf(
        tiny_hf_model("gemma3", vocab_size=len(tiny_tokenizer)), tiny_tokenizer, compatibility_mode=False
    )
    with pytest.raises(ResultsError, match="model location: 'LlamaForCausalLM' there, 'Gemma3ForCausalLM' now"):
        sweep(other, llama_tokens, TWO, batch_size=1, checkpoint_dir=tmp_path)
    processed = bridge_from_hf(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer)
    with pytest.raises(ResultsError, match="model compatibility_mode: False there, True now"):
        sweep(processed, llama_tokens, TWO, batch_size=1, checkpoint_dir=tmp_path)
    assert_untouched(finished)


def test_a_shard_without_provenance_is_refused(llama, llama_tokens, tmp_path, finished) -> None:
    path = tmp_path / "batch-00002.parquet"
    pd.read_parquet(path).to_parquet(path)  # what the checkpoints of older versions were
    with pytest.raises(ResultsError, match=r"batch-00002\.parquet records no provenance"):
        sweep(llama, llama_tokens, TWO, batch_size=1, checkpoint_dir=tmp_path)


def test_the_same_run_reuses_its_shards_bit_for_bit(llama, llama_tokens, tmp_path, finished) -> None:
    resumed = sweep(llama, llama_tokens, TWO, batch_size=1, checkpoint_dir=tmp_path, n_bootstrap=0)
    pd.testing.assert_frame_equal(
        resumed, sweep(llama, llama_tokens, TWO, batch_size=1, n_bootstrap=0), check_exact=True
    )
    assert_untouched(finished)


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "intervention",
    [
        ("delete", N_LAYERS),
        ("delete", -1),
        ("swap", N_LAYERS - 1),
        ("swap", -1),
        ("move", 0),
        ("delete", 1.5),
    ],
)
@pytest.mark.usefixtures("unchecked_shapes")  # a float layer must reach our own check
def test_bad_interventions_raise(llama, llama_tokens, intervention, tmp_path) -> None:
    with pytest.raises(ConfigError):
        sweep(llama, llama_tokens, [Intervention("delete", 0), Intervention(*intervention)], checkpoint_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # validated before any work


def test_bad_ranges_mention_the_valid_range(llama, llama_tokens) -> None:
    with pytest.raises(ConfigError, match=f"0 to {N_LAYERS - 1}"):
        sweep(llama, llama_tokens, [Intervention("delete", N_LAYERS)])
    with pytest.raises(ConfigError, match=f"0 to {N_LAYERS - 2}"):
        sweep(llama, llama_tokens, [Intervention("swap", N_LAYERS - 1)])
    with pytest.raises(ConfigError, match="'move'"):
        sweep(llama, llama_tokens, [Intervention("move", 0)])


@pytest.mark.parametrize(
    ("bad", "kwargs"),
    [
        (torch.zeros(24, dtype=torch.long), {}),
        (torch.zeros(2, 2, dtype=torch.long), {}),
        (torch.zeros(1, 2, 24, dtype=torch.long), {}),
        (torch.zeros(0, 24, dtype=torch.long), {}),
        (None, {"position_chunk": 0}),
        (None, {"batch_size": 0}),
    ],
)
@pytest.mark.usefixtures("unchecked_shapes")  # malformed on purpose: our ConfigError must answer
def test_bad_tokens_and_options_raise(llama, llama_tokens, bad, kwargs) -> None:
    with pytest.raises(ConfigError):
        sweep(llama, llama_tokens if bad is None else bad, **kwargs)


def test_an_empty_list_of_interventions_is_refused_not_replaced_by_the_defaults(
    tiny_model: TransformerBridge, tiny_tokens: torch.Tensor
) -> None:
    with pytest.raises(ConfigError, match="empty"):
        robustness_sweep(tiny_model, tiny_tokens, [], progress=False)

"""Unit tests of stages_of_inference.pruning.export on tiny random models.

The exported folder is loaded by plain ``transformers.AutoModelForCausalLM.from_pretrained``
(no code of ours) and compared with the toolkit's deletion of the same layers on a
raw-weights bridge built from an identical, separately created HF model. Both run the
same float32 weights through the same modules; the loaded model may use PyTorch's
SDPA attention where the bridge uses eager attention, a float32 rounding difference
(measured ≤ 2e-7 on these models), so logits must agree to ``1e-5``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

from stages_of_inference.corpus import load_corpus
from stages_of_inference.errors import ConfigError
from stages_of_inference.interventions import delete_layers
from stages_of_inference.models import bridge_from_hf
from stages_of_inference.pruning import export_hf, export_plan, mergekit_yaml, prune_plan
from stages_of_inference.pruning.export import HF_FOLDER, MERGEKIT_FILE, PLAN_FILE, kept_ranges
from tests.tiny_models import ARCHITECTURES, N_LAYERS, tiny_hf_model

pytestmark = pytest.mark.usefixtures("single_thread")
LOGIT_TOLERANCE = 1e-5


@pytest.fixture
def windows(tiny_tokenizer: PreTrainedTokenizerFast) -> torch.Tensor:
    return load_corpus("embedded", tiny_tokenizer, n_tokens=4 * 24, seq_len=24, seed=0)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("deleted", [[1], [0, 3], [2, 3]])
def test_the_exported_folder_loads_in_plain_transformers_and_equals_the_deletion(
    architecture: str, deleted: list[int], tiny_tokenizer: PreTrainedTokenizerFast, windows, tmp_path: Path
) -> None:
    original = tiny_hf_model(architecture, len(tiny_tokenizer))
    before = {name: tensor.clone() for name, tensor in original.state_dict().items()}
    folder = export_hf(deleted, tmp_path / "pruned", original, tiny_tokenizer)

    loaded = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert loaded.config.num_hidden_layers == N_LAYERS - len(deleted)
    bridge = bridge_from_hf(tiny_hf_model(architecture, len(tiny_tokenizer)), tiny_tokenizer, compatibility_mode=False)
    with torch.inference_mode():
        got = loaded(windows).logits
        with delete_layers(bridge, deleted):
            expected = bridge(windows)
    torch.testing.assert_close(got, expected, rtol=0, atol=LOGIT_TOLERANCE)
    assert original.config.num_hidden_layers == N_LAYERS  # the model passed in is untouched
    assert all(torch.equal(before[name], tensor) for name, tensor in original.state_dict().items())


def test_gemma3_layers_keep_their_own_attention_type(tiny_tokenizer: PreTrainedTokenizerFast, tmp_path: Path) -> None:
    # the tiny Gemma 3 is sliding, full, sliding, full; deleting layer 1 leaves layers 0, 2, 3
    folder = export_hf([1], tmp_path / "pruned", tiny_hf_model("gemma3", len(tiny_tokenizer)), tiny_tokenizer)
    config = json.loads((folder / "config.json").read_text())
    assert config["layer_types"] == ["sliding_attention", "sliding_attention", "full_attention"]
    assert config["num_hidden_layers"] == 3


@pytest.mark.parametrize("deleted", [[], [4], [-1], [0, 1, 2, 3]])
def test_impossible_deletions_are_refused(deleted, tiny_tokenizer: PreTrainedTokenizerFast, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot delete"):
        export_hf(deleted, tmp_path / "pruned", tiny_hf_model("llama", len(tiny_tokenizer)), tiny_tokenizer)
    assert not (tmp_path / "pruned").exists()


@pytest.mark.parametrize(
    ("deleted", "ranges"),
    [([1], [[0, 1], [2, 4]]), ([0, 3], [[1, 3]]), ([2, 3], [[0, 2]]), ([0], [[1, 4]])],
)
def test_the_mergekit_slices_cover_exactly_the_kept_layers(deleted: list[int], ranges: list[list[int]]) -> None:
    config = yaml.safe_load(mergekit_yaml(deleted, N_LAYERS, "org/model:v1"))
    assert config["merge_method"] == "passthrough"
    assert [s["sources"][0]["layer_range"] for s in config["slices"]] == ranges
    assert {s["sources"][0]["model"] for s in config["slices"]} == {"org/model:v1"}
    kept = [layer for start, end in ranges for layer in range(start, end)]
    assert sorted(kept + deleted) == list(range(N_LAYERS))


def test_kept_ranges_are_end_exclusive_runs() -> None:
    assert kept_ranges([0, 2, 3, 7]) == [(0, 1), (2, 4), (7, 8)]
    assert kept_ranges([]) == []


def test_export_plan_writes_the_folder_the_mergekit_config_and_plan_json(
    tiny_tokenizer: PreTrainedTokenizerFast, windows, tmp_path: Path
) -> None:
    bridge = bridge_from_hf(tiny_hf_model("llama", len(tiny_tokenizer)), tiny_tokenizer, compatibility_mode=False)
    plan = prune_plan(bridge, windows, 2, n_bootstrap=10, progress=False)
    export_plan(
        plan, tmp_path, n_deleted=1, hf_model=tiny_hf_model("llama", len(tiny_tokenizer)), tokenizer=tiny_tokenizer
    )

    record = json.loads((tmp_path / PLAN_FILE).read_text())
    assert record["deleted_layers"] == plan.deleted_layers(1) and len(record["deleted_layers"]) == 1
    assert record["kept_layers"] == [layer for layer in range(N_LAYERS) if layer not in record["deleted_layers"]]
    assert record["tokens_sha256"] == plan.tokens_sha256 and record["n_layers"] == N_LAYERS
    assert set(record["held_out"]) == {"planner", "block_influence", "angular_distance"}
    assert record["held_out"]["planner"]["deleted_layers"] == record["deleted_layers"]
    slices = yaml.safe_load((tmp_path / MERGEKIT_FILE).read_text())["slices"]
    kept = [layer for s in slices for layer in range(*s["sources"][0]["layer_range"])]
    assert kept == record["kept_layers"]
    assert AutoModelForCausalLM.from_pretrained(tmp_path / HF_FOLDER).config.num_hidden_layers == N_LAYERS - 1


def test_an_hf_model_without_its_tokenizer_is_refused(tiny_tokenizer, windows, tmp_path: Path) -> None:
    bridge = bridge_from_hf(tiny_hf_model("llama", len(tiny_tokenizer)), tiny_tokenizer, compatibility_mode=False)
    plan = prune_plan(bridge, windows, 1, n_bootstrap=0, progress=False)
    with pytest.raises(ConfigError, match="pass both or neither"):
        export_plan(plan, tmp_path, hf_model=tiny_hf_model("llama", len(tiny_tokenizer)))
    assert not list(tmp_path.iterdir())

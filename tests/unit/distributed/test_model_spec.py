"""ModelSpec: how a Ray worker loads the driver's model again, and refuses another one (no Ray needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformer_lens.model_bridge import TransformerBridge

from stages_of_inference.distributed.model_spec import ModelSpec
from stages_of_inference.errors import ConfigError
from stages_of_inference.models import load_model
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.sweep import robustness_sweep

REPO = Path(__file__).resolve().parents[3]


def test_a_worker_loads_the_same_model_by_its_folder(folder_model: LoadedModel) -> None:
    reloaded = ModelSpec.of(folder_model).load()
    assert reloaded.soi_source.identity() == folder_model.soi_source.identity()
    for (name, mine), (_, theirs) in zip(reloaded.state_dict().items(), folder_model.state_dict().items(), strict=True):
        assert torch.equal(mine, theirs), name


def test_a_model_built_in_memory_is_refused(tiny_model: TransformerBridge) -> None:
    with pytest.raises(ConfigError, match=r"load it with soi\.load_model"):
        ModelSpec.of(tiny_model)


def test_a_worker_with_other_weights_is_refused_but_another_device_is_not(folder_model: LoadedModel) -> None:
    spec = ModelSpec.of(folder_model)
    spec.check({**spec.identity, "device": "cuda:0"})
    with pytest.raises(ConfigError, match="another model than the driver") as error:
        spec.check({**spec.identity, "compatibility_mode": not spec.identity["compatibility_mode"]})
    assert "\n" not in str(error.value)


def test_a_worker_loads_the_drivers_dtype(tiny_folder: Path) -> None:
    driver = load_model(tiny_folder, compatibility_mode=False, dtype="bfloat16")
    reloaded = ModelSpec.of(driver).load()
    assert next(reloaded.parameters()).dtype == torch.bfloat16
    assert reloaded.soi_source.identity() == driver.soi_source.identity()


def test_load_options_reach_load_model(folder_model: LoadedModel) -> None:
    assert ModelSpec.of(folder_model, {"trust_remote_code": True}).arguments()["trust_remote_code"] is True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backend": "dask"}, "backend must be one of local, ray"),
        ({"backend": "ray", "workers": 0}, "workers must be at least 1"),
        ({"workers": 2}, "pass backend='ray'"),
        ({"address": "auto"}, "pass backend='ray'"),
    ],
)
def test_bad_backend_options_fail_before_any_work(
    folder_model: LoadedModel, folder_tokens: torch.Tensor, options: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        robustness_sweep(folder_model, folder_tokens, progress=False, **options)


def test_the_local_sweep_never_imports_ray(tiny_folder: Path) -> None:
    script = (
        "import sys, stages_of_inference as soi\n"
        "from stages_of_inference.sweep import robustness_sweep\n"
        f"model = soi.load_model({str(tiny_folder)!r}, compatibility_mode=False)\n"
        "tokens = soi.load_corpus('embedded', model, n_tokens=64, seq_len=32)\n"
        "robustness_sweep(model, tokens, progress=False, n_bootstrap=0)\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True, timeout=300
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"

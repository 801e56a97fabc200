"""Device and dtype names: resolution, one-line errors for what this machine cannot run, the accumulation dtype."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stages_of_inference import devices
from stages_of_inference.devices import (
    accumulation_dtype,
    available_devices,
    check_dtype_runs,
    resolve_device,
    resolve_dtype,
)
from stages_of_inference.errors import ConfigError, ModelLoadError
from stages_of_inference.experiments.command import parse_config
from stages_of_inference.experiments.config import ExperimentConfig
from stages_of_inference.models import load_model


def test_auto_is_the_best_device_present(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("auto") == torch.device(available_devices()[0])
    monkeypatch.setattr(devices, "available_devices", lambda: ["mps", "cpu"])
    assert resolve_device("auto") == torch.device("mps")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_absent_device_is_one_line_naming_what_is_here(tiny_folder: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"device 'cuda' is not available on this machine \(available: .*cpu\)"):
        load_model(tiny_folder, device="cuda")
    with pytest.raises(ModelLoadError) as error:
        resolve_device("cuda:3")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:x", ""])
def test_an_unknown_device_name_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="is not one of auto, cpu, cuda, cuda:N, mps"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["float64", "bf16", "int8", torch.float64])
def test_only_the_listed_dtypes_are_accepted(name: str | torch.dtype) -> None:
    with pytest.raises(ConfigError, match="is not one of float32, bfloat16, float16"):
        resolve_dtype(name)


def test_a_dtype_the_device_cannot_run_is_one_line(monkeypatch: pytest.MonkeyPatch, tiny_folder: Path) -> None:
    """As on a device without half-precision kernels: the probe's failure becomes the message."""

    def no_kernel(*args: object, **kwargs: object) -> torch.Tensor:
        raise RuntimeError("\"addmm_impl_cpu_\" not implemented for 'Half'\nmore detail")

    monkeypatch.setattr(torch.Tensor, "__matmul__", no_kernel)
    with pytest.raises(
        ModelLoadError, match=r"^cpu cannot run float16 here \(.*not implemented.*\); pass --dtype"
    ) as error:
        load_model(tiny_folder, dtype="float16")
    assert "\n" not in str(error.value)


def test_every_listed_dtype_runs_on_the_cpu() -> None:
    for dtype in devices.DTYPES.values():
        check_dtype_runs(torch.device("cpu"), dtype)


def test_sums_are_float64_except_on_mps() -> None:
    assert accumulation_dtype(torch.device("cpu")) == torch.float64
    assert accumulation_dtype(torch.device("cuda", 0)) == torch.float64
    assert accumulation_dtype(torch.device("mps")) == torch.float32


def test_every_experiment_takes_device_and_dtype_flags() -> None:
    config = parse_config(ExperimentConfig, ["--device", "auto", "--dtype", "bfloat16"], "demo")
    assert (config.device, config.dtype) == ("auto", "bfloat16")
    assert (ExperimentConfig().device, ExperimentConfig().dtype) == ("cpu", "float32")

"""Devices and dtypes: names to torch objects, what a device can run, and the dtype sums accumulate in.

``load_model(..., device=..., dtype=...)`` and the ``--device`` / ``--dtype`` flags take
names: :func:`resolve_device` turns ``"auto"`` into the best device present (CUDA, then
Apple's MPS, then the CPU) and refuses a device that is not here; :func:`resolve_dtype`
accepts the :data:`DTYPES`; :func:`check_dtype_runs` refuses a dtype the device cannot
compute in. Metrics are computed in float32 at least whatever the weights' dtype, and
summed over tokens in :func:`accumulation_dtype` (float64, or float32 on MPS, which has
no float64), so reduced-precision weights do not cost the sums their precision.

Example:
    >>> resolve_device("cpu"), resolve_dtype("bfloat16")
    (device(type='cpu'), torch.bfloat16)
    >>> accumulation_dtype(torch.device("cpu")), accumulation_dtype(torch.device("mps"))
    (torch.float64, torch.float32)
"""

from __future__ import annotations

import torch

from stages_of_inference.errors import ConfigError, ModelLoadError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""The weight dtypes a model can be loaded in, by name."""

DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")
"""The device names accepted (``N`` a CUDA device index)."""


def available_devices() -> list[str]:
    """The devices present on this machine, best first (``cpu`` always last).

    Example:
        >>> available_devices()[-1]
        'cpu'
    """
    cuda = [f"cuda:{index}" for index in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    mps = ["mps"] if torch.backends.mps.is_available() else []
    return [*cuda, *mps, "cpu"]


def resolve_device(name: str | torch.device) -> torch.device:
    """The torch device for a name of :data:`DEVICE_NAMES`; ``"auto"`` is the first of :func:`available_devices`.

    Raises:
        ConfigError: The name is not a device name.
        ModelLoadError: The device is not present on this machine.

    Example:
        >>> resolve_device("auto").type in {"cuda", "mps", "cpu"}
        True
    """
    text = str(name)
    if text == "auto":
        return torch.device(available_devices()[0])
    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in {"cpu", "cuda", "mps"}:
        raise ConfigError(f"device {text!r} is not one of {', '.join(DEVICE_NAMES)}; pass --device auto or cpu")
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type != "cpu" and str(device) not in available_devices():
        raise ModelLoadError(
            f"device {text!r} is not available on this machine (available: {', '.join(available_devices())}); "
            "pass --device auto or one of those"
        )
    return device


def resolve_dtype(name: str | torch.dtype) -> torch.dtype:
    """The torch dtype for a name of :data:`DTYPES` (or one of those dtypes itself).

    Raises:
        ConfigError: Not one of :data:`DTYPES`.

    Example:
        >>> resolve_dtype("float32"), resolve_dtype(torch.float16)
        (torch.float32, torch.float16)
    """
    if isinstance(name, torch.dtype) and name in DTYPES.values():
        return name
    if isinstance(name, str) and name in DTYPES:
        return DTYPES[name]
    raise ConfigError(f"dtype {name!r} is not one of {', '.join(DTYPES)}; pass --dtype float32, bfloat16 or float16")


def dtype_name(dtype: torch.dtype) -> str:
    """The name of a dtype as :data:`DTYPES` and the manifests spell it.

    Example:
        >>> dtype_name(torch.bfloat16)
        'bfloat16'
    """
    return str(dtype).removeprefix("torch.")


def check_dtype_runs(device: torch.device, dtype: torch.dtype) -> None:
    """Refuse a dtype that ``device`` cannot compute in, by running a small matmul and softmax there.

    Raises:
        ModelLoadError: The operations fail on this device in this dtype.

    Example:
        >>> check_dtype_runs(torch.device("cpu"), torch.bfloat16)
    """
    try:
        probe = torch.linspace(-1.0, 1.0, 16, device=device).reshape(4, 4).to(dtype)
        torch.softmax(probe @ probe, dim=-1).sum().item()
    except (RuntimeError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelLoadError(
            f"{device.type} cannot run {dtype_name(dtype)} here ({reason}); pass --dtype float32 or another --device"
        ) from None


def accumulation_dtype(device: torch.device) -> torch.dtype:
    """The dtype per-token metrics are summed in on ``device``: float64, or float32 on MPS (no float64 there)."""
    return torch.float32 if device.type == "mps" else torch.float64


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's weights (its first parameter's).

    Example:
        >>> model_device(torch.nn.Linear(2, 2))
        device(type='cpu')
    """
    return next(model.parameters()).device

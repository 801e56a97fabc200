"""The one entry point, :func:`load_model`: any model name to a ``TransformerBridge``, through the caches.

A name is an embedded model (``"gemma-3-270m"``, ``"smollm2-135m"``, the optional
``"qwen2.5-coder-0.5b"`` and ``"qwen2.5-coder-1.5b"``), a local
``.gguf`` file, a local Hugging Face model folder, or a hub id
(:mod:`stages_of_inference.models.sources`). In compatibility mode, weights with a
known hash are processed by TransformerLens once and then restored from the cache
(:mod:`stages_of_inference.models.processed_weights`). Nothing is ever unpickled,
and code from a model repository only runs when ``trust_remote_code=True`` is passed.
"""

from __future__ import annotations

import os
import warnings

import torch

from stages_of_inference.devices import check_dtype_runs, resolve_device, resolve_dtype
from stages_of_inference.errors import ModelLoadError
from stages_of_inference.models.bridge import LoadedModel, boot, bridge_from_hf
from stages_of_inference.models.cache import cache_dir, discard_damaged
from stages_of_inference.models.processed_weights import (
    NO_TRANSFORMS,
    load_processed,
    parameter_owners,
    processed_dir,
    save_processed,
)
from stages_of_inference.models.registry import DEFAULT_MODEL, EMBEDDED_MODELS
from stages_of_inference.models.sources import ModelSource, known_sha256, load_hf_model


def load_model(
    name: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    compatibility_mode: bool = True,
    trust_remote_code: bool = False,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
) -> LoadedModel:
    """Load a causal LM as a TransformerLens ``TransformerBridge`` in eval mode.

    Args:
        name: An embedded model name (see ``EMBEDDED_MODELS``), a local ``.gguf``
            file, a local Hugging Face model folder, or a hub id.
        compatibility_mode: Apply HookedTransformer-equivalent weight processing
            (fold norms into the next linear map, centre the unembedding, and centre
            writing weights on LayerNorm models: TransformerLens skips that on RMSNorm
            ones). ``False`` keeps the raw HF weights: the bridge then equals the HF
            model exactly.
        trust_remote_code: Allow a hub or folder model to run its own Python code.
            Off by default; models that need it fail with a message saying so.
        device: Where the weights live: ``"cpu"`` (the default), ``"cuda"``, ``"cuda:N"``,
            ``"mps"``, or ``"auto"`` for the best one present (CUDA, then MPS, then CPU).
        dtype: The weights' dtype: ``"float32"`` (the default), ``"bfloat16"`` or
            ``"float16"``. Weights are processed by TransformerLens in float32 and then
            cast (``docs/precision.md``); metrics are computed in float32 and summed in
            float64 whatever the dtype.

    Returns:
        The bridge, with ``model.soi_source`` describing where it came from and the
        weight processing TransformerLens applied.

    Raises:
        ModelLoadError: Unknown name, missing package, corrupt or incomplete files,
            a hub id that cannot be reached, a device that is not here, or a dtype
            the device cannot compute in.
        ConfigError: A device or dtype name that is not one of those above.

    Example:
        >>> model = load_model("smollm2-135m")  # doctest: +SKIP
        >>> model.cfg.n_layers, model.soi_source.center_writing_weights  # doctest: +SKIP
        (30, False)
    """
    target_device, target_dtype = resolve_device(device), resolve_dtype(dtype)
    check_dtype_runs(target_device, target_dtype)
    sha256 = known_sha256(name) if compatibility_mode else None
    if sha256 is not None:
        restored = _load_processed_copy(name, sha256, target_device, target_dtype)
        if restored is not None:
            return restored
    hf_model, tokenizer, source = load_hf_model(name, trust_remote_code=trust_remote_code)
    owners = parameter_owners(hf_model) if sha256 is not None else None
    bridge = bridge_from_hf(
        hf_model,
        tokenizer,
        compatibility_mode=compatibility_mode,
        source=source,
        device=target_device,
        dtype=target_dtype,
    )
    if owners is not None and sha256 is not None:
        try:
            save_processed(bridge, owners, processed_dir(cache_dir(), sha256, target_dtype))
        except OSError as error:  # a full disk or unwritable cache costs time, not the load
            warnings.warn(
                f"could not cache the processed weights ({error.strerror or error}); "
                "the model is loaded, but the next load processes them again",
                stacklevel=2,
            )
    return bridge


def _load_processed_copy(
    name: str | os.PathLike[str], sha256: str, device: torch.device, dtype: torch.dtype
) -> LoadedModel | None:
    """The bridge from cached processed weights, or None when there are none (or they are damaged)."""
    folder = processed_dir(cache_dir(), sha256, dtype)
    if not folder.is_dir():
        return None
    try:
        hf_model, tokenizer, applied = load_processed(folder, dtype)
    except ModelLoadError as error:
        discard_damaged(folder, error)
        return None
    text = os.fspath(name)
    source = ModelSource(text, "embedded" if text in EMBEDDED_MODELS else "gguf", str(folder), sha256)
    return boot(hf_model, tokenizer, NO_TRANSFORMS, source, device, dtype=dtype, already_applied=applied)

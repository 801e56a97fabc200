"""Booting a ``TransformerBridge`` on a Hugging Face model, and recording what TransformerLens did to it.

:func:`boot` wraps the HF model, turns on compatibility mode when asked, and records
in ``model.soi_source`` the weight-processing steps TransformerLens actually ran, read
from its own calls rather than from the flags requested: on RMSNorm models (Llama,
Gemma 3) it folds the norm scales but does not centre the writing weights, whatever
``center_writing_weights`` says; with logit softcapping it does not centre the
unembedding. It then checks, on one tiny forward, that the sweep's unguarded attention
(:mod:`stages_of_inference.models.attention_guards`) still equals TransformerLens's
own path on this model.

Warnings of the boot are let through: on the tiny test architectures and both embedded
models, TransformerLens 4.3 and transformers 5.24 emit none, so any that appears is news.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeAlias

import torch
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.weight_processing import ProcessWeights
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from stages_of_inference.devices import check_dtype_runs, dtype_name, resolve_device, resolve_dtype
from stages_of_inference.models.attention_guards import verify_unguarded_attention
from stages_of_inference.models.sources import ModelSource

LoadedModel: TypeAlias = TransformerBridge
"""A model loaded by the toolkit: a ``TransformerBridge`` whose ``soi_source`` is a :class:`ModelSource`."""

COMPATIBILITY_FLAGS = {"fold_ln": True, "center_writing_weights": True, "center_unembed": True}
"""The weight processing requested in compatibility mode (TransformerLens may skip steps: see the record)."""

PROCESSING_STEPS = {
    "fold_ln": "fold_layer_norm",
    "center_writing_weights": "center_writing_weights",
    "center_unembed": "center_unembed",
    "fold_value_biases": "fold_value_biases",
}
"""Field of the record -> the ``ProcessWeights`` method that TransformerLens runs for that step."""


def bridge_from_hf(
    hf_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    *,
    compatibility_mode: bool = True,
    source: ModelSource | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
) -> LoadedModel:
    """Wrap an in-memory HF model and tokenizer in a ``TransformerBridge``.

    No network is used. The HF model is edited in place (its layers become bridge
    blocks); keep a separate copy if you need the untouched model.

    Args:
        hf_model: A causal LM, e.g. from ``AutoModelForCausalLM.from_config``.
        tokenizer: Its tokenizer (required: none is fetched).
        compatibility_mode: Apply HookedTransformer-equivalent weight processing
            (see ``load_model``).
        source: Provenance to record; a description of an in-memory model if omitted.
        device: Torch device name (see :func:`~stages_of_inference.devices.resolve_device`).
        dtype: Weight dtype name (see :data:`~stages_of_inference.devices.DTYPES`); the
            weights are processed in their own dtype first, then cast.

    Raises:
        ConfigError: An unknown device or dtype name.
        ModelLoadError: The device is not here, or cannot compute in ``dtype``.

    Example:
        >>> model = bridge_from_hf(tiny_llama, tokenizer)  # doctest: +SKIP
        >>> model.soi_source.fold_ln, model.soi_source.center_writing_weights  # doctest: +SKIP
        (True, False)
    """
    return boot(hf_model, tokenizer, COMPATIBILITY_FLAGS if compatibility_mode else None, source, device, dtype=dtype)


def boot(
    hf_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    processing: dict[str, bool] | None,
    source: ModelSource | None,
    device: str | torch.device,
    *,
    dtype: str | torch.dtype = "float32",
    already_applied: dict[str, bool] | None = None,
) -> LoadedModel:
    """Boot the bridge and enable compatibility mode with ``processing`` (None: raw weights).

    The HF model is moved to ``device`` and its weights are processed in the dtype
    they have (float32 for every source ``load_model`` reads); only then are the
    floating parameters cast to ``dtype``. Folding norms into reduced-precision weights
    would round every folded product; cast after, each weight is rounded once.
    Buffers keep their dtype (RoPE's float32 inverse frequencies, as
    ``from_pretrained(dtype=...)`` keeps them).

    Args:
        hf_model: The HF model (edited in place).
        tokenizer: Its tokenizer.
        processing: Keyword arguments of ``enable_compatibility_mode``, or None for raw weights.
        source: Where the weights came from (an in-memory model if None).
        device: Torch device name.
        dtype: Weight dtype name.
        already_applied: For weights processed earlier and restored from the cache
            (booted with every transform off): the steps recorded when they were processed.

    Returns:
        The bridge in eval mode; ``soi_source`` records the steps applied, dtype and device.
    """
    target_device, target_dtype = resolve_device(device), resolve_dtype(dtype)
    check_dtype_runs(target_device, target_dtype)
    hf_model.eval()
    hf_model.config.use_cache = False
    if not hf_model.config.architectures:
        hf_model.config.architectures = [type(hf_model).__name__]
    hf_model.to(target_device)  # type: ignore[arg-type]  # transformers types .to as if it took a model
    bridge = TransformerBridge.boot_transformers(
        hf_model.config.architectures[0],
        hf_model=hf_model,
        tokenizer=tokenizer,
        device=str(target_device),
        dtype=next(hf_model.parameters()).dtype,
    )
    applied = dict.fromkeys(PROCESSING_STEPS, False)
    if processing is not None:
        with _recording_steps() as ran:
            bridge.enable_compatibility_mode(**processing)
        applied = already_applied if already_applied is not None else ran
    _cast_weights(bridge, target_dtype)
    bridge.eval()
    parameter = next(bridge.parameters())
    base = source or ModelSource("<in-memory>", "memory", type(hf_model).__name__, None)
    bridge.soi_source = dataclasses.replace(
        base,
        compatibility_mode=processing is not None,
        fold_ln=applied["fold_ln"],
        center_writing_weights=applied["center_writing_weights"],
        center_unembed=applied["center_unembed"],
        fold_value_biases=applied["fold_value_biases"],
        dtype=dtype_name(parameter.dtype),
        device=str(parameter.device),
    )
    verify_unguarded_attention(bridge)
    return bridge


def _cast_weights(bridge: TransformerBridge, dtype: torch.dtype) -> None:
    """Cast the bridge's floating parameters and buffers to ``dtype`` (RoPE frequencies excepted); record it in ``cfg``.

    Buffers are cast too: compatibility mode adds the unembedding's bias as one. The
    rotary embeddings' inverse frequencies stay float32, as ``from_pretrained(dtype=...)``
    keeps them: rounded to 8 bits of mantissa, the angles of distant positions drift.
    """
    for module in bridge.modules():
        for parameter in module.parameters(recurse=False):
            if parameter.is_floating_point() and parameter.dtype != dtype:
                parameter.data = parameter.data.to(dtype)
        for name, buffer in module.named_buffers(recurse=False):
            if buffer.is_floating_point() and buffer.dtype != dtype and not name.endswith(_ROPE_BUFFER):
                module.register_buffer(
                    name, buffer.to(dtype), persistent=name not in module._non_persistent_buffers_set
                )
    bridge.cfg.dtype = dtype


_ROPE_BUFFER = "inv_freq"
"""The suffix of the rotary embeddings' buffer names in transformers (``inv_freq``, ``original_inv_freq``)."""


@contextmanager
def _recording_steps() -> Iterator[dict[str, bool]]:
    """Record which weight-processing steps TransformerLens runs inside the block.

    Each step's ``ProcessWeights`` method is wrapped for the duration (and restored
    afterwards, even on error), so the record is TransformerLens's own decision, taken
    from its calls. Not thread-safe: two threads booting bridges at once share the wrappers.
    """
    ran = dict.fromkeys(PROCESSING_STEPS, False)
    originals = {method: vars(ProcessWeights)[method] for method in PROCESSING_STEPS.values()}

    def spy(step: str, method: staticmethod) -> staticmethod:
        def run(*args: object, **kwargs: object) -> object:
            ran[step] = True
            return method.__func__(*args, **kwargs)

        return staticmethod(run)

    try:
        for step, method in PROCESSING_STEPS.items():
            setattr(ProcessWeights, method, spy(step, originals[method]))
        yield ran
    finally:
        for method, original in originals.items():
            setattr(ProcessWeights, method, original)

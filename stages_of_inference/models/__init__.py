"""Loading models: the embedded registry, sources (hub id, local folder, GGUF), caches, bridge boot.

Every model the toolkit touches is a TransformerLens ``TransformerBridge`` made by
:func:`load_model` (or :func:`bridge_from_hf` for an in-memory HF model), typed
:data:`LoadedModel`; its ``soi_source`` (:class:`ModelSource`) records where the
weights came from, the weight processing TransformerLens applied, dtype and device.
:func:`available_models` lists what can be loaded here and now.

Modules: ``registry`` (embedded models, their pinned hashes), ``parts`` (files inside
packages, assembled from parts), ``sources`` (``ModelSource``, any name to an HF model),
``gguf``, ``folder``, ``hub`` (the kinds of source), ``cache`` (the cache folder, hash checks), ``processed_weights`` (the processed-weights cache), ``bridge`` (boot and the
record of what was applied), ``attention_guards`` (the sweep's unguarded attention),
``load`` (:func:`load_model`).
"""

from stages_of_inference.models.bridge import LoadedModel, bridge_from_hf
from stages_of_inference.models.cache import CACHE_ENV_VAR, cache_dir
from stages_of_inference.models.load import load_model
from stages_of_inference.models.registry import (
    BUNDLED_MODELS,
    DEFAULT_MODEL,
    EMBEDDED_MODELS,
    available_models,
)
from stages_of_inference.models.sources import ModelSource, load_hf_model

__all__ = [
    "BUNDLED_MODELS",
    "CACHE_ENV_VAR",
    "DEFAULT_MODEL",
    "EMBEDDED_MODELS",
    "LoadedModel",
    "ModelSource",
    "available_models",
    "bridge_from_hf",
    "cache_dir",
    "load_hf_model",
    "load_model",
]

"""Loading models: the embedded registry, sources (hub id, local folder, GGUF), caches, bridge boot.

Every model the toolkit touches is a TransformerLens ``TransformerBridge`` made by
:func:`load_model`; :func:`available_models` lists what can be loaded here and now.
"""

from stages_of_inference.models.loading import (
    DEFAULT_MODEL,
    available_models,
    load_model,
)

__all__ = ["DEFAULT_MODEL", "available_models", "load_model"]

"""Models named by a Hugging Face hub id: found in the local hub cache, or downloaded when online.

Only configs, safetensors weights, tokenizer files and Python files are fetched (the
last run only with ``trust_remote_code=True``); offline, a missing model fails fast.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from stages_of_inference.errors import ModelLoadError
from stages_of_inference.models.folder import load_folder

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
"""The form of a hub id: ``owner/name``."""


def hub_cached_models() -> list[str]:
    """The ids of the models in the local Hugging Face hub cache (none if it is missing or unreadable)."""
    try:
        from huggingface_hub import scan_cache_dir

        return sorted(r.repo_id for r in scan_cache_dir().repos if r.repo_type == "model")
    except Exception:  # no cache folder yet, or an unreadable one: nothing cached
        return []


def is_hub_id(text: str) -> bool:
    """Whether ``text`` names a hub model: of the form ``owner/name``, or in the local hub cache.

    Example:
        >>> is_hub_id("EleutherAI/pythia-410m-deduped"), is_hub_id("no-such-model")
        (True, False)
    """
    return bool(HUB_ID.match(text)) or text in hub_cached_models()


def load_hub(repo_id: str, *, trust_remote_code: bool) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a hub model from the local hub cache, downloading it first if it is not there."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not in the local cache: fetch it, failing fast when offline
        folder = _download_hub(repo_id)
    return load_folder(folder, trust_remote_code=trust_remote_code)


def _download_hub(repo_id: str) -> Path:
    from huggingface_hub import HfApi, snapshot_download

    offline_hint = (
        "no network or HF_HUB_OFFLINE is set; load an embedded model, a local folder "
        "or .gguf file instead, or connect and retry"
    )
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        raise ModelLoadError(f"hub model {repo_id!r} is not cached locally and {offline_hint}")
    try:
        HfApi().model_info(repo_id, timeout=10)
    except Exception as error:
        reason = type(error).__name__
        if "NotFound" in reason or "Gated" in reason or "401" in str(error):
            raise ModelLoadError(
                f"hub model {repo_id!r} does not exist or is gated ({reason}); check the id "
                "or log in with `huggingface-cli login`"
            ) from None
        raise ModelLoadError(f"cannot reach the Hugging Face hub for {repo_id!r} ({reason}): {offline_hint}") from None
    allow = ["*.json", "*.safetensors", "*.model", "*.txt", "*.py", "*.tiktoken"]
    return Path(snapshot_download(repo_id, allow_patterns=allow))

"""Where a model's weights come from: an embedded model, a GGUF file, a local folder or a hub id.

:func:`load_hf_model` turns any of them into a plain Hugging Face model and tokenizer,
with a :class:`ModelSource` that records where the weights came from; the bridge boot
(:mod:`stages_of_inference.models.bridge`) completes the record with the weight
processing TransformerLens applied, the dtype and the device.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from stages_of_inference.errors import ModelLoadError
from stages_of_inference.models.cache import converted_dir, discard_damaged, file_sha256, verify_sha256
from stages_of_inference.models.folder import load_folder
from stages_of_inference.models.gguf import check_metadata, load_gguf_cached
from stages_of_inference.models.hub import is_hub_id, load_hub
from stages_of_inference.models.registry import EMBEDDED_MODELS, EmbeddedModel


@dataclass(frozen=True)
class ModelSource:
    """Where a loaded model's weights came from, how TransformerLens processed them, and where they live.

    Example:
        >>> source = ModelSource("smollm2-135m", "embedded", "/cache/x", "ab" * 32)
        >>> source.to_dict()["center_writing_weights"], "location" in source.identity()
        (False, False)
    """

    name: str
    """What the user passed to ``load_model``."""
    kind: str
    """One of ``"embedded"``, ``"gguf"``, ``"folder"``, ``"hub"`` (``"memory"`` for in-memory models)."""
    location: str
    """The file, folder or hub id that was read."""
    sha256: str | None
    """Hash of the weights file (GGUF files only; ``None`` for folders and hub ids)."""
    compatibility_mode: bool = False
    """Whether TransformerLens's compatibility mode (HookedTransformer-equivalent weights) is on."""
    fold_ln: bool = False
    """Norm scales (and, for LayerNorm, biases and centring) folded into the next linear maps."""
    center_writing_weights: bool = False
    """Weights writing to the residual stream centred; TransformerLens skips this on RMSNorm models."""
    center_unembed: bool = False
    """The unembedding centred over the vocabulary; skipped on models with logit softcapping."""
    fold_value_biases: bool = False
    """Value biases folded into the attention output bias (a no-op on models without them)."""
    dtype: str = "float32"
    """The dtype of the weights."""
    device: str = "cpu"
    """The device the weights are on."""

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-serialisable dict (for manifests)."""
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, object]:
        """The fields that determine the numbers: :meth:`to_dict` without ``location`` when a hash identifies the weights.

        The same GGUF is read from its package, from the converted copy or from the
        processed copy depending on what the cache holds, so its location says nothing
        about the numbers; a folder's or hub id's location is all there is.
        """
        fields = self.to_dict()
        if self.sha256 is not None:
            del fields["location"]
        return fields


def load_hf_model(
    name: str | os.PathLike[str], *, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, ModelSource]:
    """Load the plain Hugging Face model and tokenizer that ``load_model`` wraps.

    Useful as an independent reference: the bridge edits the HF model it is given in
    place, so a comparison needs a second, separately loaded copy.

    Returns:
        ``(hf_model, tokenizer, source)``; the model is float32, in eval mode, with
        ``use_cache`` off. ``source.compatibility_mode`` is ``False``.

    Raises:
        ModelLoadError: Unknown name, missing package, corrupt or incomplete files,
            or a hub id that cannot be reached.
    """
    text = os.fspath(name)
    if text in EMBEDDED_MODELS:
        hf_model, tokenizer, source = _load_embedded(EMBEDDED_MODELS[text])
    elif text.endswith(".gguf"):
        path = _existing(text)
        hf_model, tokenizer = load_gguf_cached(path, architecture=None, sha256=None)
        source = ModelSource(text, "gguf", str(path), file_sha256(path))
    elif Path(text).expanduser().is_dir():
        path = Path(text).expanduser().resolve()
        hf_model, tokenizer = load_folder(path, trust_remote_code=trust_remote_code)
        source = ModelSource(text, "folder", str(path), None)
    elif is_hub_id(text):
        hf_model, tokenizer = load_hub(text, trust_remote_code=trust_remote_code)
        source = ModelSource(text, "hub", text, None)
    else:
        known = ", ".join(EMBEDDED_MODELS)
        raise ModelLoadError(
            f"unknown model {text!r}: not an embedded model ({known}), an existing .gguf "
            "file or folder, or a hub id of the form 'owner/name'; "
            "run `stages-of-inference models` to list what can be loaded here"
        )
    hf_model.eval()
    hf_model.config.use_cache = False
    if not hf_model.config.architectures:
        hf_model.config.architectures = [type(hf_model).__name__]
    return hf_model, tokenizer, source


def known_sha256(name: str | os.PathLike[str]) -> str | None:
    """The hash of a GGUF-backed model's weights (None for folders, hub ids and unknown names)."""
    text = os.fspath(name)
    try:
        if text in EMBEDDED_MODELS:
            return EMBEDDED_MODELS[text].sha256
        if text.endswith(".gguf") and Path(text).expanduser().is_file():
            return file_sha256(Path(text).expanduser())
    except (ModuleNotFoundError, OSError, ValueError):  # not installed or damaged: the full load says how to fix it
        return None
    return None


def _existing(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"model file {text!r} does not exist; check the path")
    return path.resolve()


def _load_embedded(model: EmbeddedModel) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, ModelSource]:
    cached = converted_dir(model.stem, model.sha256)  # the pinned hash finds the cached copy without the GGUF
    if cached.is_dir():
        try:
            hf_model, tokenizer = load_folder(cached, trust_remote_code=False)
            return hf_model, tokenizer, ModelSource(model.name, "embedded", str(cached), model.sha256)
        except ModelLoadError as error:
            discard_damaged(cached, error)
    path = embedded_gguf(model)
    hf_model, tokenizer = load_gguf_cached(path, architecture=model.architecture, sha256=model.sha256)
    return hf_model, tokenizer, ModelSource(model.name, "embedded", str(path), model.sha256)


def embedded_gguf(model: EmbeddedModel) -> Path:
    """An embedded model's GGUF file, checked: its pinned sha256 and the architecture, layers and name in its header.

    A damaged assembled copy is assembled again from the parts, once.

    Raises:
        ModelLoadError: A package is missing or damaged; the message says what to install.
    """
    reinstall = f"reinstall with `{model.install} --force-reinstall`"
    try:
        path = model.locate()
        try:
            verify_sha256(path, model.sha256, fix=reinstall)
        except ModelLoadError:
            if len(model.parts) == 1:
                raise
            path.unlink()
            path = model.locate()
            verify_sha256(path, model.sha256, fix=reinstall)
    except ModuleNotFoundError as error:
        raise ModelLoadError(
            f"embedded model {model.name!r} is not installed ({error.name} missing); "
            f"install it with `{model.install}` or run `make install`"
        ) from None
    except OSError as error:
        raise ModelLoadError(
            f"embedded model {model.name!r}: its package files are damaged ({error}); {reinstall}"
        ) from None
    check_metadata(path, model.metadata, fix=reinstall)
    return path

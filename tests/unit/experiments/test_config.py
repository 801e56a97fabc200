"""check_budgets refuses backend and memory options that cannot run, before a model is loaded."""

from __future__ import annotations

import pytest

from stages_of_inference.errors import ConfigError
from stages_of_inference.experiments.config import ExperimentConfig, check_budgets


@pytest.mark.parametrize(
    ("options", "flag"),
    [
        ({"backend": "dask"}, "--backend local or ray"),
        ({"workers": 2}, "--backend ray"),
        ({"backend": "ray", "workers": 0}, "--workers"),
        ({"shared_gb": -1.0}, "--shared-gb"),
        ({"shared_gb": float("nan")}, "--shared-gb"),
    ],
)
def test_impossible_backend_options_are_refused(options: dict[str, object], flag: str) -> None:
    with pytest.raises(ConfigError, match=flag) as error:
        check_budgets(ExperimentConfig(**options))  # type: ignore[arg-type]
    assert "\n" not in str(error.value)


def test_ray_with_workers_is_accepted() -> None:
    check_budgets(ExperimentConfig(backend="ray", workers=2))

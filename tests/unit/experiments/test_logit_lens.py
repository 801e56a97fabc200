"""Unit tests of the logit_lens experiment on a tiny model: the shortcut's token budget."""

from __future__ import annotations

import numpy as np
import pytest

from stages_of_inference.analyses.logit_lens import METRICS, logit_lens
from stages_of_inference.errors import ConfigError
from stages_of_inference.experiments import logit_lens as experiment
from stages_of_inference.experiments.logit_lens import LogitLensConfig

pytestmark = pytest.mark.usefixtures("single_thread")


def test_the_shortcut_scores_the_first_windows_of_its_budget(tiny_model, tiny_tokens) -> None:
    pos = tiny_tokens.shape[1]
    config = LogitLensConfig(model="tiny", batch_size=2, final_scale_tokens=pos + 1)  # rounds up to 2 windows
    results = experiment.compute(tiny_model, tiny_tokens, config)
    shortcut = results.tables["logit_lens_final_scale"]
    assert (shortcut.n_tokens == 2 * (pos - 2)).all()
    assert (results.tables["logit_lens"].n_tokens == tiny_tokens.shape[0] * (pos - 2)).all()
    expected = logit_lens(tiny_model, tiny_tokens[:2], reuse_final_norm_scale=True, progress=False)
    np.testing.assert_allclose(shortcut[list(METRICS)], expected[list(METRICS)], rtol=0, atol=1e-6)


def test_a_budget_above_the_corpus_means_all_and_zero_skips(tiny_model, tiny_tokens) -> None:
    everything = LogitLensConfig(model="tiny", final_scale_tokens=10**9)
    table = experiment.compute(tiny_model, tiny_tokens, everything).tables["logit_lens_final_scale"]
    assert (table.n_tokens == tiny_tokens.shape[0] * (tiny_tokens.shape[1] - 2)).all()
    skipped = experiment.compute(tiny_model, tiny_tokens, LogitLensConfig(model="tiny", final_scale_tokens=0))
    assert set(skipped.tables) == {"logit_lens", "logit_lens_top_tokens"}


def test_a_negative_budget_is_refused() -> None:
    with pytest.raises(ConfigError, match="--final-scale-tokens"):
        LogitLensConfig(final_scale_tokens=-1)

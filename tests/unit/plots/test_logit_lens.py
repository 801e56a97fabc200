"""Unit tests of stages_of_inference.plots.logit_lens on tiny random models."""

from __future__ import annotations

import pandas as pd

from stages_of_inference.analyses.logit_lens import logit_lens, logit_lens_top_tokens
from stages_of_inference.plots.logit_lens import (
    plot_logit_lens,
    plot_top_tokens_heatmap,
)
from stages_of_inference.plots.style import LENS_DEPTH_AXIS_TITLE


def test_plots_have_one_trace_per_model_and_metric(tiny_model, tiny_tokens) -> None:
    table = logit_lens(tiny_model, tiny_tokens)
    both = pd.concat([table.assign(model="a"), table.assign(model="b")])
    assert len(plot_logit_lens(both).data) == 2 * 6
    heatmap = plot_top_tokens_heatmap(logit_lens_top_tokens(tiny_model, "The for statement"))
    assert heatmap.data[0].z.shape[0] == tiny_model.cfg.n_layers + 1


def test_the_depth_axis_says_points_over_l() -> None:
    table = pd.DataFrame(
        {
            "relative_depth": [0.0, 1.0],
            "entropy_bits": 1.0,
            "kl_to_final": 1.0,
            "loss": 1.0,
            "accuracy": 1.0,
            "agreement_with_final": 1.0,
            "true_token_rank": 1.0,
        }
    )
    figure = plot_logit_lens(table)
    assert {figure.layout[f"xaxis{suffix}"].title.text for suffix in ("", 2, 3, 4, 5, 6)} == {LENS_DEPTH_AXIS_TITLE}
    assert [trace.name for trace in figure.data[:1]] == ["model"]

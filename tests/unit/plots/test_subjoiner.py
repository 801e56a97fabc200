"""Unit tests of stages_of_inference.plots.subjoiner: the pattern heatmap of a pattern table."""

from __future__ import annotations

import pandas as pd
import torch

from stages_of_inference.analyses.subjoiner import Prompt, subjoiner_pattern
from stages_of_inference.plots.subjoiner import plot_subjoiner_pattern


def test_plot_shows_one_head_on_one_prompt(tiny_model) -> None:
    figure = plot_subjoiner_pattern(subjoiner_pattern(tiny_model, "the attention pattern", layer=1, head=1))
    n = len(tiny_model.tokenizer("the attention pattern", add_special_tokens=False)["input_ids"]) + 1
    z = torch.tensor(figure.data[0].z)
    assert z.shape == (n, n) and len(figure.data[0].x) == n
    torch.testing.assert_close(z.sum(dim=1), torch.ones(n))
    assert torch.triu(z, diagonal=1).abs().max() == 0  # causal
    assert figure.layout.title.text == "Attention pattern, layer 1 head 1"
    prompt = Prompt(context="a b", word="c", tokens=(0, 5, 6, 7))
    assert len(plot_subjoiner_pattern(subjoiner_pattern(tiny_model, prompt, layer=0, head=0)).data[0].x) == 4


def test_plot_labels_each_position_with_its_token() -> None:
    pattern = pd.DataFrame(
        {
            "layer": 0,
            "head": 2,
            "query": [1, 1, 0, 0],
            "key": [1, 0, 1, 0],
            "query_token": ["b", "b", "a", "a"],
            "key_token": ["b", "a", "b", "a"],
            "weight": [0.6, 0.4, 0.0, 1.0],
        }
    )
    heatmap = plot_subjoiner_pattern(pattern).data[0]
    assert heatmap.x == heatmap.y == ("0:a", "1:b")
    assert heatmap.z.tolist() == [[1.0, 0.0], [0.4, 0.6]]

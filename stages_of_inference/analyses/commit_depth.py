"""Where the prediction settles: the commit depth of every token, and exiting at layer ℓ.

Read through the logit lens (:mod:`stages_of_inference.analyses.logit_lens`, points
``0..L``: the embedding, then every block's output), each scored token's prediction
*commits* at the first point ``p`` from which the lens's top-1 equals the model's
final top-1 at every point ``p, p + 1, .., L``. The last point is the model's output by
definition (its top-1 is the final top-1), so a token whose lens only agrees at the
output commits at ``L``; one whose embedding already predicts the final token, and
never changes its mind, commits at 0. ``relative_commit_depth`` is ``point / L``.

The *exit curve* answers "what if the model exited at point ℓ?": for each point, the
accuracy of the lens's top-1 against the true next token, its agreement with the
final top-1 and KL(final || lens ℓ), averaged over tokens with a bootstrap interval
over whole windows. It is the logit lens's table read as an early exit.

Tokens are grouped by the class of the model's final top-1 (the prediction that
commits), from the tokenizer's own string of the token (:func:`token_class`):

* ``digits``: its text, without the word-start marker, is all digits (``"2"``, ``" 2024"``);
* ``punctuation``: all punctuation or symbol characters (Unicode categories ``P*`` and ``S*``);
* ``word_initial``: it starts a word: a leading space, SentencePiece's ``'▁'`` or
  byte-level BPE's ``'Ġ'``, followed by other text;
* ``continuation``: any other token with text (a word's later sub-token);
* ``other``: special tokens and whitespace-only tokens (newlines, indentation).

Example:
    >>> import torch
    >>> agreement = torch.tensor([[0, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 1], [1, 1, 1, 0]], dtype=torch.bool)
    >>> commit_points(agreement).tolist()  # agreement is [point, token]; the last point always agrees
    [1, 0, 3, 2]
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Bool, Int
from torch import Tensor

from stages_of_inference.activations import DEFAULT_BATCH_SIZE
from stages_of_inference.analyses.logit_lens import METRICS, lens_chunks
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models.bridge import LoadedModel

TOKEN_CLASSES = ("word_initial", "continuation", "digits", "punctuation", "other")
"""The classes of :func:`token_class`, in table order."""

WORD_START_MARKERS = (" ", "▁", "Ġ")
"""A leading space, SentencePiece's word-start marker, byte-level BPE's encoded space."""

EXIT_METRICS = {"accuracy": "accuracy", "agreement": "agreement_with_final", "kl_to_final": "kl_to_final"}
"""Exit-curve column -> the lens metric it averages."""

_AGREEMENT = METRICS.index("agreement_with_final")


def commit_points(agreement: Bool[Tensor, "point token"]) -> Int[Tensor, " token"]:
    """The first point from which the lens agrees with the final top-1 at every later point.

    ``agreement[p, t]`` says whether the lens's top-1 at point ``p`` equals the final
    top-1 of token ``t``. The last point counts as agreeing (it is the model's
    output), so every token commits at some point ``0..L``.
    """
    agrees = agreement.clone()
    agrees[-1] = True
    trailing = agrees.flip(0).long().cumprod(0).sum(0)
    return agreement.shape[0] - trailing


def token_class(token: str, text: str, *, special: bool = False) -> str:
    """The class of one token (rules in the module docstring).

    Args:
        token: The tokenizer's own string of the token (``convert_ids_to_tokens``),
            where a word start shows as ``'▁'`` or ``'Ġ'``.
        text: The token decoded to text (``decode([id])``).
        special: It is one of the tokenizer's special tokens.

    Example:
        >>> [token_class(t, x) for t, x in [("Ġthe", " the"), ("▁the", "the"), ("ing", "ing"), ("Ġ2024", " 2024")]]
        ['word_initial', 'word_initial', 'continuation', 'digits']
        >>> [token_class(t, x) for t, x in [(",", ","), ("▁(", " ("), ("Ċ", "\\n"), ("▁$", " $")]]
        ['punctuation', 'punctuation', 'other', 'punctuation']
        >>> token_class("<bos>", "<bos>", special=True)
        'other'
    """
    word_start = token.startswith(WORD_START_MARKERS) or text.startswith(" ")
    body = text.strip()
    if special or not body:
        return "other"
    if body.isdigit():
        return "digits"
    if all(unicodedata.category(character)[0] in "PS" for character in body):
        return "punctuation"
    return "word_initial" if word_start else "continuation"


def token_classes(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """The :func:`token_class` of each id, each distinct id classified once."""
    special = set(getattr(tokenizer, "all_special_ids", ()))
    distinct = sorted(set(ids))
    strings = tokenizer.convert_ids_to_tokens(distinct)
    classes = {
        token_id: token_class(str(string), tokenizer.decode([token_id]), special=token_id in special)
        for token_id, string in zip(distinct, strings, strict=True)
    }
    return [classes[token_id] for token_id in ids]


@dataclass
class CommitDepth:
    """The commit depth of every scored token of a corpus, with the sums behind the exit curve."""

    per_token: pd.DataFrame
    """One row per scored pair: ``sequence``, ``position`` (the predicting position),
    ``target``, ``prediction`` (the final top-1), ``correct``, ``commit_point``,
    ``relative_commit_depth`` and ``token_class`` (of the prediction)."""
    exit_sums: pd.DataFrame
    """One row per window and point: ``sequence``, ``point``, the window's sums of the
    lens's ``accuracy``, ``agreement`` and ``kl_to_final``, and ``n_tokens``."""
    n_layers: int

    def exit_curve(self, *, n_bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
        """:func:`exit_curve` of these sums."""
        return exit_curve(self.exit_sums, n_bootstrap=n_bootstrap, seed=seed)

    def distribution(self) -> pd.DataFrame:
        """:func:`commit_distribution` over points ``0..L``."""
        return commit_distribution(self.per_token, self.n_layers + 1)

    def by_class(self) -> pd.DataFrame:
        """:func:`commit_by_class` of these tokens."""
        return commit_by_class(self.per_token)


def commit_depth(
    model: LoadedModel,
    tokens: Int[Tensor, "batch pos"],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> CommitDepth:
    """The commit point of every scored token, and the exit curve, in one logit-lens pass.

    Args:
        model: A ``TransformerBridge`` with a tokenizer.
        tokens: ``[batch, pos]`` windows, BOS at position 0.
        batch_size: Windows per forward pass.
        progress: Show a progress bar over batches.

    Returns:
        The per-token table and the per-window sums of :class:`CommitDepth`.

    Raises:
        ConfigError: ``tokens`` is empty or its windows are shorter than 3 tokens.

    Example:
        >>> result = commit_depth(model, tokens)  # doctest: +SKIP
        >>> result.per_token.relative_commit_depth.median()  # doctest: +SKIP
        0.8
        >>> result.exit_curve().columns[:6].tolist()  # doctest: +SKIP
        ['point', 'layer', 'relative_depth', 'accuracy', 'accuracy_ci_low', 'accuracy_ci_high']
    """
    n_layers = n_layers_of(model)
    n_points = n_layers + 1
    frames, sums = [], []
    columns = [METRICS.index(metric) for metric in EXIT_METRICS.values()]
    chunks = lens_chunks(model, tokens, batch_size=batch_size, progress=progress, description="commit depth")
    for chunk in chunks:
        commit = commit_points(chunk.metrics[:, :, _AGREEMENT] == 1)
        frames.append(
            pd.DataFrame(
                {
                    "sequence": chunk.sequences.numpy(),
                    "position": chunk.positions.numpy(),
                    "target": chunk.targets.numpy(),
                    "prediction": chunk.final_top1.numpy(),
                    "correct": (chunk.final_top1 == chunk.targets).numpy(),
                    "commit_point": commit.numpy(),
                }
            )
        )
        sums.append(_window_sums(chunk.sequences, chunk.metrics[:, :, columns].double(), n_points))
    per_token = pd.concat(frames, ignore_index=True)
    per_token["relative_commit_depth"] = per_token.commit_point / n_layers
    per_token["token_class"] = token_classes(model.tokenizer, per_token.prediction.tolist())
    exit_sums = pd.concat(sums).groupby(["sequence", "point"], as_index=False).sum()
    return CommitDepth(per_token, exit_sums, n_layers)


def _window_sums(sequences: Int[Tensor, " rows"], values: Tensor, n_points: int) -> pd.DataFrame:
    """Per (window, point) sums of ``values`` ``[point, rows, metric]`` and the token count."""
    windows, inverse = sequences.unique(return_inverse=True)
    totals = torch.zeros(n_points, len(windows), values.shape[-1], dtype=torch.float64)
    totals.index_add_(1, inverse, values)
    counts = torch.bincount(inverse, minlength=len(windows))
    return pd.DataFrame(
        {
            "sequence": np.tile(windows.numpy(), n_points),
            "point": np.repeat(np.arange(n_points), len(windows)),
            **{column: totals[:, :, k].flatten().numpy() for k, column in enumerate(EXIT_METRICS)},
            "n_tokens": np.tile(counts.numpy(), n_points),
        }
    )


def exit_curve(
    exit_sums: pd.DataFrame, *, n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Exiting at each point: mean accuracy, agreement and KL, with bootstrap intervals over windows.

    Args:
        exit_sums: The per-window sums of :func:`commit_depth`.
        n_bootstrap: Resamples of whole windows (0: no intervals, NaN bounds).
        confidence: Coverage of the percentile intervals.
        seed: Seed of the resampling.

    Returns:
        One row per point: ``point``, ``layer`` (-1 for the embedding),
        ``relative_depth`` (``point / L``), ``accuracy``, ``agreement``,
        ``kl_to_final`` and each one's ``_ci_low`` / ``_ci_high``, ``n_tokens``.

    Example:
        >>> sums = pd.DataFrame({"sequence": [0, 0, 1, 1], "point": [0, 1, 0, 1],
        ...     "accuracy": [1.0, 2.0, 0.0, 2.0], "agreement": [0.0, 2.0, 1.0, 2.0],
        ...     "kl_to_final": [4.0, 0.0, 2.0, 0.0], "n_tokens": [2, 2, 2, 2]})
        >>> exit_curve(sums, n_bootstrap=0)[["point", "accuracy", "kl_to_final"]].values.tolist()
        [[0.0, 0.25, 1.5], [1.0, 1.0, 0.0]]
    """
    rows = []
    n_points = int(exit_sums.point.max()) + 1
    alpha = (1 - confidence) / 2
    n_windows = exit_sums.sequence.nunique()
    samples = np.random.default_rng(seed).integers(0, n_windows, size=(n_bootstrap, n_windows)) if n_bootstrap else None
    by_point = exit_sums.sort_values(["point", "sequence"]).groupby("point")
    for point, group in by_point:  # every point has every window: the same resamples at each point
        counts = group.n_tokens.to_numpy(dtype=float)
        row: dict[str, float] = {"point": float(point)}
        for column in EXIT_METRICS:
            values = group[column].to_numpy()
            row[column] = float(values.sum() / counts.sum())
            if samples is None:
                low = high = float("nan")
            else:
                low, high = np.quantile(values[samples].sum(1) / counts[samples].sum(1), [alpha, 1 - alpha])
            row[f"{column}_ci_low"], row[f"{column}_ci_high"] = float(low), float(high)
        row["n_tokens"] = float(counts.sum())
        rows.append(row)
    table = pd.DataFrame(rows)
    table["point"] = table.point.astype(int)
    table["n_tokens"] = table.n_tokens.astype(int)
    table.insert(1, "layer", table.point - 1)
    table.insert(2, "relative_depth", table.point / (n_points - 1))
    return table


def commit_distribution(per_token: pd.DataFrame, n_points: int) -> pd.DataFrame:
    """How many tokens commit at each point ``0..n_points - 1``.

    Example:
        >>> commit_distribution(pd.DataFrame({"commit_point": [0, 2, 2]}), 3).fraction.tolist()
        [0.3333333333333333, 0.0, 0.6666666666666666]
    """
    counts = np.bincount(per_token.commit_point.to_numpy(), minlength=n_points)
    return pd.DataFrame(
        {
            "point": range(n_points),
            "relative_depth": [point / (n_points - 1) for point in range(n_points)],
            "n_tokens": counts,
            "fraction": counts / counts.sum(),
        }
    )


def commit_by_class(per_token: pd.DataFrame) -> pd.DataFrame:
    """Commit depth per token class: count, share, mean and quartiles of the relative commit depth, accuracy.

    Example:
        >>> per_token = pd.DataFrame({"token_class": ["digits", "digits", "other"],
        ...     "relative_commit_depth": [0.5, 1.0, 0.0], "correct": [True, False, True]})
        >>> commit_by_class(per_token)[["token_class", "n_tokens", "median_depth"]].values.tolist()
        [['digits', 2, 0.75], ['other', 1, 0.0]]
    """
    grouped = per_token.groupby("token_class").relative_commit_depth
    table = pd.DataFrame(
        {
            "n_tokens": grouped.size(),
            "mean_depth": grouped.mean(),
            "q25_depth": grouped.quantile(0.25),
            "median_depth": grouped.median(),
            "q75_depth": grouped.quantile(0.75),
            "accuracy": per_token.groupby("token_class").correct.mean(),
        }
    )
    table = table.reindex([c for c in TOKEN_CLASSES if c in table.index]).rename_axis("token_class").reset_index()
    table.insert(2, "share", table.n_tokens / table.n_tokens.sum())
    return table

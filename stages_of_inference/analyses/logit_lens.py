"""The logit lens across depth (paper section 3): what would the model predict if it stopped here?

Every intermediate residual stream (the embedding output, then each block's output) is
decoded through the model's own final norm and unembedding, and the resulting
next-token distribution is scored against the true next token and against the model's
final output. The norm is recomputed for each layer's residual, which is the correct
lens; ``reuse_final_norm_scale=True`` reproduces the old TransformerLens shortcut that
divided every layer's residual by the *final* layer's norm scale.

Points are numbered ``0..L``: point 0 is the embedding output (``layer = -1``,
``blocks.0.hook_resid_pre``), point ``i + 1`` is ``blocks.i.hook_resid_post``. The last
point reproduces the model's own output. Predictions are scored at positions
``1..T-2`` for the token that follows (BOS never predicts), with the sweep's scoring
(:mod:`stages_of_inference.scoring.chunks`): on a CPU in float32, each point's logits
are reduced vocabulary tile by vocabulary tile while in cache and never written out
whole, so memory stays bounded even for Gemma's 262,144-entry vocabulary.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from stages_of_inference.activations import DEFAULT_BATCH_SIZE, cached_activations
from stages_of_inference.devices import accumulation_dtype
from stages_of_inference.errors import ConfigError
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.scoring.chunks import chunk_reference
from stages_of_inference.scoring.decode import unembed
from stages_of_inference.scoring.workspace import Workspace, chunk_rows
from stages_of_inference.tokens import (
    bos_token_id,
    check_windows,
    n_scored,
    prediction_targets,
    scored_positions,
)

METRICS = (
    "entropy_bits",
    "kl_to_final",
    "loss",
    "accuracy",
    "true_token_rank",
    "agreement_with_final",
)
"""The per-token quantities averaged at each point, in table column order."""

FINAL_SCALE_HOOK = "ln_final.hook_scale"


def residual_hook_names(n_layers: int) -> list[str]:
    """The hooks read at points ``0..L``: block 0's input, then every block's output.

    Example:
        >>> residual_hook_names(2)
        ['blocks.0.hook_resid_pre', 'blocks.0.hook_resid_post', 'blocks.1.hook_resid_post']
    """
    return ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post" for i in range(n_layers)]


def lens_hook_names(n_layers: int, *, reuse_final_norm_scale: bool = False) -> list[str]:
    """The hooks the lens reads: :func:`residual_hook_names`, and the final norm's scale for the old shortcut.

    Example:
        >>> lens_hook_names(1, reuse_final_norm_scale=True)
        ['blocks.0.hook_resid_pre', 'blocks.0.hook_resid_post', 'ln_final.hook_scale']
    """
    names = residual_hook_names(n_layers)
    return [*names, FINAL_SCALE_HOOK] if reuse_final_norm_scale else names


def lens_logits(
    model: LoadedModel,
    resid: Float[Tensor, "rows d_model"],
    final_scale: Float[Tensor, "rows 1"] | None = None,
    workspace: Workspace | None = None,
) -> Float[Tensor, "rows d_vocab"]:
    """Decode residual vectors through the model's own final norm, unembedding and logit transform.

    Uses the bridge's ``ln_final`` and ``unembed`` modules, so it is right both with raw
    weights and in compatibility mode (norm weights folded into ``W_U``), and applies
    the architecture's post-unembedding transform (Gemma 2 style softcap, if any).

    Args:
        model: A ``TransformerBridge``.
        resid: Residual stream vectors, one per row.
        final_scale: If given, the norm divides by this scale (the final layer's
            ``ln_final.hook_scale``) instead of the vector's own: the old shortcut.
        workspace: Buffers to decode into, as in
            :func:`~stages_of_inference.scoring.decode.unembed`.

    Returns:
        The logits of each row.

    Example:
        >>> logits = lens_logits(model, cache["blocks.3.hook_resid_post"][0])  # doctest: +SKIP
    """
    return unembed(model, lens_input(model, resid, final_scale), workspace)


def lens_input(
    model: LoadedModel, resid: Float[Tensor, "rows d_model"], final_scale: Float[Tensor, "rows 1"] | None = None
) -> Float[Tensor, "rows d_model"]:
    """The unembedding's input for residual vectors: the model's own final norm (see :func:`lens_logits`).

    Example:
        >>> normed = lens_input(model, cache["blocks.3.hook_resid_post"][0])  # doctest: +SKIP
    """
    with _scale_override(model, final_scale):
        return model.ln_final(resid.unsqueeze(0)).squeeze(0)


@contextlib.contextmanager
def _scale_override(model: LoadedModel, scale: Tensor | None) -> Iterator[None]:
    """Make ``ln_final`` divide by ``scale`` instead of its input's own norm."""
    if scale is None:
        yield
        return
    replacement = scale.unsqueeze(0)
    with warnings.catch_warnings():  # the bridge warns that an edited scale is a rounding-level change
        warnings.simplefilter("ignore")
        with model.hooks(fwd_hooks=[(FINAL_SCALE_HOOK, lambda value, hook: replacement)]):
            yield


def _prediction_rows(activation: Float[Tensor, "batch pos *rest"]) -> Float[Tensor, "rows *rest"]:  # noqa: F821 (jaxtyping)
    """Positions ``1..T-2`` (those that predict a scored next token), batch and pos flattened."""
    return activation[:, scored_positions(activation.shape[1])].flatten(0, 1)


def lens_token_metrics(
    model: LoadedModel,
    residuals: list[Float[Tensor, "rows d_model"]],
    final_residual: Float[Tensor, "rows d_model"],
    targets: Int[Tensor, " rows"],
    final_scale: Float[Tensor, "rows 1"] | None = None,
) -> Iterator[tuple[slice, Float[Tensor, "point chunk metric"], Int[Tensor, " chunk"]]]:
    """The :data:`METRICS` of every token at every point, one chunk of rows at a time.

    The one home of "decode the residuals of some points and score them against a
    final output": the logit lens, the commit depth and the self-repair curves all
    read their per-token numbers from here. The scoring is the sweep's
    (:func:`~stages_of_inference.scoring.chunks.chunk_reference`): the reference is
    the final output, decoded once per chunk, and each point's residual, through the
    lens's norm, is compared with it. On a CPU in float32 the ``[rows, d_vocab]``
    logits are never written out whole (vocabulary tiles, per-tile sums combined in
    float64); elsewhere each point's full logits are built, scored and dropped.

    Exactness of the tiled path: ``accuracy``, ``agreement_with_final`` and
    ``true_token_rank`` are exact: equal to the full float32 logits' (the rank is
    counted against the target's logit as the tile product gives it, ties included,
    see :mod:`stages_of_inference.scoring.chunks`), so they differ from a float64
    computation only at float32 near-ties. ``entropy_bits``, ``kl_to_final`` and
    ``loss`` are combined from per-tile sums in float64; their error is that of the
    float32 logits themselves. Bound: per-point means within 1e-4 of a float64
    computation from the same normed residuals. Measured on 512 tokens (2 windows,
    ``python -m benchmarks.lens_throughput --tokens 512 --float64``), max |delta| of
    the per-point means against float64, SmolLM2 / Gemma 3: entropy 4.8e-7 / 3.6e-7
    bits, KL 3.0e-6 / 4.8e-6, loss 3.1e-6 / 1.3e-5 nats, accuracy and agreement 0,
    rank 0.002 / 0.012 (the full float32 logits: the same rank, and KL 9.4e-4 /
    0.011, entropy 2.0e-5 / 1.5e-4, loss 9.0e-6 / 3.0e-5). The unit tests hold every
    token within 1e-4 on tiny models (``tests/unit/analyses/test_logit_lens.py``).

    Args:
        model: A ``TransformerBridge``.
        residuals: One ``[rows, d_model]`` residual per point (any points: an
            intervened model's too). When the last is ``final_residual`` itself (the
            same tensor) and there is no ``final_scale``, its metrics are the
            reference's own pass, bit for bit, and it is not decoded a second time.
        final_residual: The residual whose decoding the lens is compared with
            (``kl_to_final``, ``agreement_with_final``), usually the original model's
            last point; always decoded through its own final norm.
        targets: The true next token of each row.
        final_scale: The old shortcut's norm scale for ``residuals`` (see :func:`lens_logits`).

    Yields:
        ``(rows, metrics, final_top1)``: the slice of rows of the chunk, its ``[point,
        chunk, metric]`` values (metrics in :data:`METRICS` order) and the top-1 token
        of ``final_residual``'s decoding, the one ``agreement_with_final`` compares with.
    """
    chunk = chunk_rows(int(model.cfg.d_vocab))
    workspace = Workspace()
    last_is_final = final_scale is None and residuals[-1] is final_residual
    for start in range(0, targets.shape[0], chunk):
        rows = slice(start, start + chunk)
        final_input = lens_input(model, final_residual[rows])
        reference = chunk_reference(model, final_input, targets[rows], workspace, rank=last_is_final)
        scale = None if final_scale is None else final_scale[rows]
        values = []
        for point, resid in enumerate(residuals):
            where = f"the logit lens at point {point}"
            if last_is_final and point == len(residuals) - 1:
                compared = reference.own_metrics(where, rank=True)
            else:
                compared = reference.compare(lens_input(model, resid[rows], scale), where, rank=True)
            values.append(torch.stack([compared[name] for name in _SCORING_NAMES], dim=-1))
        yield rows, torch.stack(values), reference.top1


_SCORING_NAMES = ("entropy_bits", "kl", "loss", "correct", "true_token_rank", "agreement")
"""The scoring's name of each of :data:`METRICS`, in that order."""


@dataclass
class LensChunk:
    """The lens's per-token metrics on a chunk of scored (position -> next token) pairs of a corpus."""

    sequences: Int[Tensor, " rows"]
    """The window (row of ``tokens``) of each pair."""
    positions: Int[Tensor, " rows"]
    """The position that predicts (``1..T-2``)."""
    targets: Int[Tensor, " rows"]
    """The true next token."""
    final_top1: Int[Tensor, " rows"]
    """The model's own top-1 next token: its last point's, as ``agreement_with_final`` compares with."""
    metrics: Float[Tensor, "point rows metric"]
    """The :data:`METRICS` at points ``0..L``."""


def lens_chunks(
    model: LoadedModel,
    tokens: Int[Tensor, "batch pos"],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    reuse_final_norm_scale: bool = False,
    progress: bool = True,
    description: str = "logit lens",
) -> Iterator[LensChunk]:
    """Run the model batch by batch and yield the lens's per-token metrics at every point.

    One pass over the corpus and the points ``0..L`` (see the module docstring);
    :func:`logit_lens` averages these chunks, other analyses keep them per token.

    Raises:
        ConfigError: ``tokens`` is empty or its windows are shorter than 3 tokens.

    Example:
        >>> chunk = next(lens_chunks(model, tokens))  # doctest: +SKIP
        >>> chunk.metrics.shape  # [point, rows, metric]  # doctest: +SKIP
        torch.Size([31, 1016, 6])
    """
    check_windows(tokens, what="the logit lens")
    names = residual_hook_names(n_layers_of(model))
    hooks = lens_hook_names(n_layers_of(model), reuse_final_norm_scale=reuse_final_norm_scale)
    n_batches = -(-tokens.shape[0] // batch_size)
    n_predicting = n_scored(tokens.shape[1])
    batches = cached_activations(model, tokens, hooks, batch_size)
    first = 0
    for batch, cache in tqdm(batches, total=n_batches, disable=not progress, desc=description):
        scale = _prediction_rows(cache[FINAL_SCALE_HOOK]) if reuse_final_norm_scale else None
        targets = prediction_targets(batch).flatten()
        with torch.inference_mode():
            residuals = [_prediction_rows(cache[name]) for name in names]
            scored = list(lens_token_metrics(model, residuals, residuals[-1], targets, scale))
        flat = torch.arange(targets.shape[0], device=targets.device)
        for rows, metrics, final_top1 in scored:
            yield LensChunk(
                sequences=first + flat[rows] // n_predicting,
                positions=1 + flat[rows] % n_predicting,
                targets=targets[rows],
                final_top1=final_top1,
                metrics=metrics,
            )
        first += batch.shape[0]


def logit_lens(
    model: LoadedModel,
    tokens: Int[Tensor, "batch pos"],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    reuse_final_norm_scale: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Score the logit lens at the embedding and after every block, averaged over tokens.

    Args:
        model: A ``TransformerBridge``.
        tokens: ``[batch, pos]`` windows, BOS at position 0.
        batch_size: Windows per forward pass.
        reuse_final_norm_scale: Divide every layer's residual by the final layer's norm
            scale (the old TransformerLens shortcut) instead of its own.
        progress: Show a progress bar over batches (each decodes every point).

    Returns:
        One row per point ``0..L``: ``layer`` (-1 for the embedding), ``point``,
        ``relative_depth`` (``point / L``), the :data:`METRICS` averaged over every
        scored (position -> next token) pair, and ``n_tokens``. ``entropy_bits`` is in
        bits, ``kl_to_final`` (KL(final || layer)) and ``loss`` in nats,
        ``true_token_rank`` is 0 when the true token is top-1.

    Raises:
        ConfigError: ``tokens`` is empty or its windows are shorter than 3 tokens.

    Example:
        >>> table = logit_lens(model, tokens)  # doctest: +SKIP
        >>> table.loc[table.point == table.point.max(), "kl_to_final"].item() < 1e-5  # doctest: +SKIP
        True
    """
    n_points = n_layers_of(model) + 1
    sums = torch.zeros(n_points, len(METRICS), dtype=torch.float64)
    n_tokens = 0
    chunks = lens_chunks(
        model, tokens, batch_size=batch_size, reuse_final_norm_scale=reuse_final_norm_scale, progress=progress
    )
    for chunk in chunks:
        for point in range(n_points):
            metrics = chunk.metrics[point]
            sums[point] += metrics.to(accumulation_dtype(metrics.device)).sum(0).cpu().double()
        n_tokens += chunk.targets.numel()
    return lens_table(sums / n_tokens, n_tokens)


def lens_table(means: Float[Tensor, "point metric"], n_tokens: int) -> pd.DataFrame:
    """The table of :func:`logit_lens` from the mean :data:`METRICS` at points ``0..L``.

    Example:
        >>> lens_table(torch.zeros(3, len(METRICS)), 10)[["layer", "point", "relative_depth"]].values.tolist()
        [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.5], [1.0, 2.0, 1.0]]
    """
    n_points = means.shape[0]
    table = pd.DataFrame(means.numpy(), columns=list(METRICS))
    table.insert(0, "layer", range(-1, n_points - 1))
    table.insert(1, "point", range(n_points))
    table.insert(2, "relative_depth", [point / (n_points - 1) for point in range(n_points)])
    table["n_tokens"] = n_tokens
    return table


def logit_lens_top_tokens(model: LoadedModel, prompt: str, *, k: int = 1) -> pd.DataFrame:
    """The lens's top-``k`` next tokens at every point and position of one prompt.

    BOS is prepended (as :func:`stages_of_inference.corpus.load_corpus` does) and does
    not get a row.

    Args:
        model: A ``TransformerBridge`` with a tokenizer.
        prompt: The text to read.
        k: How many top tokens per cell.

    Returns:
        One row per (point, position, rank): ``layer``, ``point``, ``relative_depth``,
        ``position``, ``input_token`` (the text at that position), ``rank`` (0 = top),
        ``top_token`` (its text) and ``probability``.

    Raises:
        ConfigError: ``k`` is below 1 or above the vocabulary, or the prompt is empty.

    Example:
        >>> top = logit_lens_top_tokens(model, "The capital of France is")  # doctest: +SKIP
        >>> top.query("point == point.max()").top_token.iloc[-1]  # doctest: +SKIP
        ' Paris'
    """
    tokenizer = model.tokenizer
    tokens = _prompt_tokens(tokenizer, prompt)
    d_vocab = int(model.cfg.d_vocab)
    if not 1 <= k <= d_vocab:
        raise ConfigError(f"k={k} must be between 1 and the vocabulary size {d_vocab}")
    names = residual_hook_names(n_layers_of(model))
    _, cache = next(cached_activations(model, tokens, names, batch_size=1))
    with torch.inference_mode():  # one decoding call for every point: W_U is read once
        residuals = torch.cat([cache[name][0, 1:] for name in names])
        probs = torch.softmax(lens_logits(model, residuals).float(), dim=-1)
        values, indices = (part.cpu() for part in probs.topk(k, dim=-1))
    n_positions = tokens.shape[1] - 1
    frames = [
        _top_frame(tokenizer, tokens[0], values[rows], indices[rows], point)
        for point, rows in enumerate(torch.arange(len(residuals)).split(n_positions))
    ]
    table = pd.concat(frames, ignore_index=True)
    table.insert(2, "relative_depth", table.point / (len(names) - 1))
    return table


def _prompt_tokens(tokenizer: object, prompt: str) -> Int[Tensor, "1 pos"]:
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    if not ids:
        raise ConfigError("the prompt is empty after tokenization; pass some text")
    return torch.tensor([[bos_token_id(tokenizer), *ids]], dtype=torch.long)


def _top_frame(
    tokenizer: object,
    tokens: Int[Tensor, " pos"],
    values: Float[Tensor, "position k"],
    indices: Int[Tensor, "position k"],
    point: int,
) -> pd.DataFrame:
    """Rows for one point from its top-k probabilities over positions ``1..T-1``."""
    n_positions, k = indices.shape
    decode = tokenizer.decode  # type: ignore[attr-defined]
    positions = [p for p in range(1, n_positions + 1) for _ in range(k)]
    return pd.DataFrame(
        {
            "layer": point - 1,
            "point": point,
            "position": positions,
            "input_token": [decode([int(tokens[p])]) for p in positions],
            "rank": list(range(k)) * n_positions,
            "top_token": [decode([int(i)]) for i in indices.flatten()],
            "probability": values.flatten().numpy(),
        }
    )

"""Prediction and suppression neurons: how each MLP neuron writes onto the vocabulary.

Section 5 of Lad et al., after Gurnee et al. 2024 ("Universal Neurons"). Each MLP
neuron adds its output weight row ``W_out[layer, neuron]`` (the down projection for
gated MLPs) to the MLP's output. Where a norm sits between the MLP and the residual
stream (Gemma 2/3's ``post_feedforward_layernorm``) its per-channel gain rescales that
row, and TransformerLens does not fold it: :func:`output_directions` gives the
direction that actually reaches the residual stream, ``gain * W_out[layer, neuron]``
(:func:`post_norm_gain`), or the row itself without such a norm. A neuron's direct
effect on the logits is that direction dotted with every unembedding column.
:func:`neuron_vocab_moments` takes the *cosine* between the direction and each
column of ``W_U`` and summarises the resulting vocabulary-sized distribution by its
population mean, variance, skew ``E[z^3]`` and raw (non-excess, Gaussian = 3)
kurtosis ``E[z^4]``, where ``z`` is the cosine standardised over the vocabulary.

A heavy-tailed distribution (kurtosis > 10) marks a neuron that acts on a few
tokens: *prediction* neurons push them up (positive skew), *suppression* neurons
push them down (negative skew); :func:`classify_neurons` and :func:`neuron_counts`
count them per layer. :func:`class_neurons` finds the neurons that promote or
suppress a class of tokens (e.g. words ending in "ing").

Centring: with ``center_unembed=True`` the mean over the vocabulary is subtracted
from every row of ``W_U`` (each of its ``d_model`` rows), as TransformerLens's
``center_unembed`` does, before the cosines are taken. This removes the direction
that raises every logit equally, which softmax ignores. A bridge loaded in
compatibility mode already has a centred ``W_U``; centring again changes nothing.
``W_out`` is used as the bridge holds it (as processed in compatibility mode);
TransformerLens never folds a post-MLP norm, which is why its gain is applied here.

Speed: the cosines ``W_out[layer] @ W_U`` (``d_mlp x d_vocab``, 2.1 GB per layer for
Gemma 3) never exist whole. They are computed ``neuron_chunk`` neurons by
:data:`~stages_of_inference.scoring.decode.VOCABULARY_TILE` tokens at a time (1 MB,
a core's L2 cache), by the unembedding's tile loop, and each tile's power sums are
taken while it is in the cache, so the analysis runs close to the machine's matrix
product rate (``docs/performance.md``). The mean over the vocabulary needs no tile:
it is the neuron's direction dotted with the mean unit column, and the tiles hold the
cosines minus that mean, so the sums are of centred values (well conditioned).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from stages_of_inference.errors import ConfigError
from stages_of_inference.layers import check_layers, n_layers_of, relative_depth
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.scoring.decode import product_tiles
from stages_of_inference.scoring.workspace import Workspace

MOMENT_COLUMNS = ("mean", "variance", "skew", "kurtosis")
"""The per-neuron statistics of :func:`neuron_vocab_moments`."""

MOMENT_RTOL, MOMENT_ATOL = 1e-5, 1e-6
"""How far each moment of :func:`neuron_vocab_moments` may be from float64: ``|error| <= MOMENT_ATOL + MOMENT_RTOL * |value|``.

The reference is the same definition computed in float64 from the same float32 weights.
The float32 error enters through the cosines: each is a ``d_model``-term dot product of
unit vectors, off by a few ``u * |terms|`` (``u = 6e-8``), against a spread of cosines
``sigma`` of 0.02 to 0.05; ``E[z^k]`` of the standardised ``z = d / sigma`` inherits
about ``k`` times that relative error per token, and its average over the vocabulary
cancels most of it. The tile sums (float32 over 1,024 tokens, then float64 across tiles)
add less, and the mean involves no float32 sum (the direction dotted with the mean unit
column). Measured (``benchmarks/neuron_throughput.py``): at most 0.09 of this bound on
SmolLM2 (layers 0, 15, 29) and 0.12 on Gemma 3 (layers 0, 8, 17), e.g. kurtosis within
4e-6 and 9e-6, skew within 2.4e-7 and 3e-7; the previous implementation (whole
``[256, d_vocab]`` rows, float32 means) was 2.5 to 4 times further from float64 on skew
and kurtosis. No neuron's kind changed on either model (kurtosis threshold 10).
"""

DEFAULT_KURTOSIS_THRESHOLD = 10.0
"""Raw kurtosis above which a neuron counts as prediction or suppression (the paper's 10)."""

GAIN_TOLERANCE = 1e-4
"""Largest relative difference, channel by channel, between a norm's output and ``gain * probe`` in :func:`post_norm_gain`.

The norm divides the unit-RMS probe by ``sqrt(1 + eps)``, a relative change of about
``eps / 2`` (5e-7 for Gemma's eps of 1e-6), plus float32 rounding (~1e-7). The wrong
convention is off by ``probe`` in every channel, a relative ``1 / |gain|``, so it is
rejected as long as one channel's gain is below 1e4 (Gemma 3 270M's post-MLP gains
have medians of 1 to 300 per layer and reach 1657).
"""


def unit_unembed(W_U: Float[Tensor, "d_model d_vocab"], *, center: bool = True) -> Float[Tensor, "d_model d_vocab"]:
    """``W_U`` with (optionally) its vocabulary mean removed and unit-norm columns.

    Args:
        W_U: The unembedding matrix.
        center: Subtract the mean over the vocabulary from each ``d_model`` row first.

    Example:
        >>> import torch
        >>> unit = unit_unembed(torch.tensor([[1.0, 3.0], [2.0, 2.0]]), center=False)
        >>> [round(x, 4) for x in unit.norm(dim=0).tolist()]
        [1.0, 1.0]
    """
    W = W_U.detach().float()
    if center:
        W = W - W.mean(dim=1, keepdim=True)
    return W / W.norm(dim=0, keepdim=True).clamp_min(torch.finfo(W.dtype).tiny)


def _layers(model: object, layers: Iterable[int] | int | None) -> list[int]:
    n_layers = n_layers_of(model)
    return list(range(n_layers)) if layers is None else check_layers(layers, n_layers)


def _check_chunk(neuron_chunk: int) -> None:
    if isinstance(neuron_chunk, bool) or not isinstance(neuron_chunk, int) or neuron_chunk < 1:
        raise ConfigError(f"neuron_chunk must be a positive int, got {neuron_chunk!r}")


def post_norm_gain(norm: torch.nn.Module) -> Float[Tensor, " d_model"]:
    """The per-channel gain of an RMS norm, read off how the module computes its output.

    An RMS norm maps ``x`` to ``gain * x / rms(x)``. It stores ``gain`` in its
    ``weight`` in one of two conventions: the gain itself (Llama, OLMo 2,
    ``torch.nn.RMSNorm``) or its offset from one, ``gain = 1 + weight`` (Gemma 1-3).
    Both candidates are tried on a probe of unit RMS with distinct positive entries,
    which the module must map to ``gain * probe`` (up to :data:`GAIN_TOLERANCE`); the
    one it does is returned. The gain comes from the module's own ``weight``, so it
    is exactly what the module applies.

    Args:
        norm: The module that runs, e.g. a Hugging Face ``Gemma3RMSNorm``.

    Returns:
        The gain, float32, on the weight's device.

    Raises:
        ConfigError: The module has no ``weight``, or computes neither
            ``weight * x / rms(x)`` nor ``(1 + weight) * x / rms(x)`` (a LayerNorm,
            which also centres ``x``, or a norm with a bias): the direction written
            through it is not a rescaled ``W_out`` row.

    Example:
        >>> import torch
        >>> from transformers.models.gemma3.modeling_gemma3 import Gemma3RMSNorm
        >>> gemma_norm = Gemma3RMSNorm(3)  # stores weight 0, applies 1 + 0
        >>> post_norm_gain(gemma_norm).tolist()
        [1.0, 1.0, 1.0]
        >>> plain_norm = torch.nn.RMSNorm(3)  # stores weight 1, applies 1
        >>> post_norm_gain(plain_norm).tolist()
        [1.0, 1.0, 1.0]
        >>> post_norm_gain(torch.nn.LayerNorm(3))  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        stages_of_inference.errors.ConfigError: ...
    """
    stored = getattr(norm, "weight", None)
    if not isinstance(stored, Tensor):
        raise ConfigError(f"the post-MLP norm {type(norm).__name__} has no weight; its gain is unknown")
    weight = stored.detach().float()
    probe = torch.linspace(1.0, 2.0, weight.shape[-1], device=weight.device)
    probe = probe / probe.square().mean().sqrt()
    with torch.no_grad():
        output = norm(probe.to(stored.dtype)).float()
    tolerance = max(GAIN_TOLERANCE, 2 * torch.finfo(stored.dtype).eps)  # reduced precision rounds probe and output
    for gain in (weight, 1.0 + weight):
        if torch.allclose(output, gain * probe, rtol=tolerance, atol=0.0):
            return gain
    raise ConfigError(
        f"the post-MLP norm {type(norm).__name__} computes neither weight * x / rms(x) nor "
        "(1 + weight) * x / rms(x), so the direction its neurons write is unknown; "
        "only per-channel RMS norms after the MLP are supported"
    )


def output_directions(model: LoadedModel, layer: int) -> Float[Tensor, "d_mlp d_model"]:
    """The direction each neuron of one layer writes into the residual stream.

    Neuron ``n`` adds ``a_n * W_out[layer, n]`` to the MLP output. A post-MLP norm
    (TransformerLens's ``ln2_post``: Gemma 2/3's ``post_feedforward_layernorm``, OLMo 2,
    GLM-4) divides that output by its RMS and multiplies each channel by its gain, so
    the neuron writes ``gain * W_out[layer, n]`` times a positive factor shared by all
    neurons of the layer at a given token. Without such a norm (Llama, Qwen2, GPT-2,
    GPT-NeoX) the direction is ``W_out[layer, n]``. The gain is read from the Hugging
    Face module that runs (:func:`post_norm_gain`); no weight processing folds it.

    Args:
        model: A ``TransformerBridge``.
        layer: The layer (0-based).

    Returns:
        One row per neuron, float32.

    Raises:
        ConfigError: The post-MLP norm is not a per-channel RMS norm (see :func:`post_norm_gain`).

    Example:
        >>> directions = output_directions(model, 0)  # doctest: +SKIP
        >>> directions.shape == model.blocks[0].mlp.W_out.shape  # doctest: +SKIP
        True
    """
    block = model.blocks[layer]
    # The block's W_out is a transposed view; laid out as the stacked model.W_out is, the
    # matrix products round the same way (bit-identical moments without a post-MLP norm).
    W_out = block.mlp.W_out.detach().float().contiguous()
    post_norm = getattr(block, "ln2_post", None)
    if post_norm is None:
        return W_out
    return W_out * post_norm_gain(post_norm.original_component).to(W_out.device)


def _unit_column_deviations(
    W_U: Float[Tensor, "d_model d_vocab"], *, center: bool
) -> tuple[Float[Tensor, "d_vocab d_model"], Float[Tensor, " d_model"]]:
    """The unit columns of :func:`unit_unembed` minus their mean, one row per token, and that mean.

    The cosine of a unit direction ``u`` with token ``t`` is ``u . w_t``; its mean over
    the vocabulary is ``u . mean_t(w_t)``, and ``u . (w_t - mean_t(w_t))`` is its
    deviation from that mean. The rows are laid out as a linear layer's weight, so each
    tile of them is contiguous. The mean is accumulated in float64, 4,096 tokens at a time.
    """
    unit = unit_unembed(W_U, center=center)
    deviations = unit.t().contiguous()
    del unit
    mean_column = torch.stack([tile.sum(dim=0, dtype=torch.float64) for tile in deviations.split(4096)]).sum(dim=0)
    mean_column /= deviations.shape[0]
    deviations -= mean_column.float()
    return deviations, mean_column


def _vocabulary_moments(
    unit_rows: Float[Tensor, "n d_model"],
    deviations: Float[Tensor, "d_vocab d_model"],
    mean_column: Float[Tensor, " d_model"],
    workspace: Workspace,
) -> Float[Tensor, "n 4"]:
    """Mean, variance, skew and raw kurtosis over the vocabulary of each row's cosines, float64.

    The tiles hold ``d = cosine - mean``; their sums of ``d^2, d^3, d^4`` are taken
    while each tile is in the cache and accumulated in float64 across tiles. With
    ``N`` tokens, ``variance = S2 / N``, ``skew = (S3 / N) / variance^1.5`` and
    ``kurtosis = (S4 / N) / variance^2``: the population moments of the standardised
    cosines. A zero row has variance 0 and NaN skew and kurtosis.
    """
    sums = torch.zeros(3, unit_rows.shape[0], dtype=torch.float64, device=unit_rows.device)
    for _, tile in product_tiles(unit_rows, deviations, workspace):
        square = torch.mul(tile, tile, out=workspace.like("neuron_square", tile))
        power = workspace.like("neuron_power", tile)
        sums[0] += square.sum(dim=0)
        sums[1] += torch.mul(square, tile, out=power).sum(dim=0)
        sums[2] += torch.mul(square, square, out=power).sum(dim=0)
    variance, third, fourth = sums / deviations.shape[0]
    mean = unit_rows.double() @ mean_column
    return torch.stack([mean, variance, third / variance**1.5, fourth / variance.square()], dim=1)


def _layer_moments(
    directions: Float[Tensor, "d_mlp d_model"],
    deviations: Float[Tensor, "d_vocab d_model"],
    mean_column: Float[Tensor, " d_model"],
    neuron_chunk: int,
    workspace: Workspace,
) -> Float[Tensor, "d_mlp 4"]:
    """Vocabulary moments of the cosines of every neuron of one layer, chunk by chunk."""
    unit_rows = directions / directions.norm(dim=1, keepdim=True).clamp_min(torch.finfo(directions.dtype).tiny)
    return torch.cat(
        [
            _vocabulary_moments(unit_rows[start : start + neuron_chunk], deviations, mean_column, workspace)
            for start in range(0, unit_rows.shape[0], neuron_chunk)
        ]
    )


def neuron_vocab_moments(
    model: LoadedModel,
    *,
    layers: Iterable[int] | int | None = None,
    neuron_chunk: int = 256,
    center_unembed: bool = True,
) -> pd.DataFrame:
    """Moments over the vocabulary of the cosines between each neuron's output and ``W_U``.

    For neuron ``n`` of layer ``l`` the cosine with token ``t`` is
    ``cos(d[l, n], W_U[:, t])``, where ``d`` is the direction the neuron writes into
    the residual stream (:func:`output_directions`: ``W_out[l, n]`` scaled by the gain
    of a post-MLP norm, if the model has one), with ``W_U`` centred over the
    vocabulary first when ``center_unembed``; the statistics are population moments
    over all tokens.
    A zero ``W_U`` column (e.g. an untrained padding token, uncentred) has cosine 0.

    Args:
        model: A ``TransformerBridge``.
        layers: Layers to analyse (0-based); all by default.
        neuron_chunk: Neurons per matrix product (each tile is ``neuron_chunk x``
            :data:`~stages_of_inference.scoring.decode.VOCABULARY_TILE` floats, times 3).
            The extra memory is mostly one float32 copy of ``W_U``.
        center_unembed: Subtract the vocabulary mean from each row of ``W_U`` first.

    Returns:
        One row per neuron: ``layer``, ``neuron``, ``relative_depth``, ``mean``,
        ``variance``, ``skew``, ``kurtosis``.

    Raises:
        ConfigError: A bad layer spec or ``neuron_chunk``, or a post-MLP norm that
            is not a per-channel RMS norm.

    Example:
        >>> moments = neuron_vocab_moments(model, layers=[0, 29])  # doctest: +SKIP
        >>> moments.columns.tolist()  # doctest: +SKIP
        ['layer', 'neuron', 'relative_depth', 'mean', 'variance', 'skew', 'kurtosis']
    """
    _check_chunk(neuron_chunk)
    chosen = _layers(model, layers)
    n_layers = n_layers_of(model)
    workspace = Workspace()
    with torch.inference_mode():
        deviations, mean_column = _unit_column_deviations(model.W_U, center=center_unembed)
        frames = [
            _moments_frame(
                layer,
                n_layers,
                _layer_moments(output_directions(model, layer), deviations, mean_column, neuron_chunk, workspace),
            )
            for layer in chosen
        ]
    return pd.concat(frames, ignore_index=True)


def _moments_frame(layer: int, n_layers: int, moments: Float[Tensor, "d_mlp 4"]) -> pd.DataFrame:
    values = moments.cpu().numpy()
    frame = pd.DataFrame(values, columns=list(MOMENT_COLUMNS))
    frame.insert(0, "relative_depth", relative_depth(layer, n_layers))
    frame.insert(0, "neuron", range(len(frame)))
    frame.insert(0, "layer", layer)
    return frame


def classify_neurons(moments: pd.DataFrame, *, kurtosis_threshold: float = DEFAULT_KURTOSIS_THRESHOLD) -> pd.DataFrame:
    """Add a ``kind`` column: prediction, suppression or other.

    ``"prediction"``: kurtosis > threshold and skew > 0; ``"suppression"``: kurtosis >
    threshold and skew < 0; everything else ``"other"``.

    Example:
        >>> import pandas as pd
        >>> table = pd.DataFrame({"layer": [0, 0, 0], "kurtosis": [40.0, 40.0, 3.0],
        ...                       "skew": [2.0, -2.0, 0.1]})
        >>> classify_neurons(table)["kind"].tolist()
        ['prediction', 'suppression', 'other']
    """
    missing = {"kurtosis", "skew"} - set(moments.columns)
    if missing:
        raise ConfigError(f"moments lack columns {sorted(missing)}; pass the output of neuron_vocab_moments")
    heavy = moments["kurtosis"] > kurtosis_threshold
    classified = moments.copy()
    classified["kind"] = "other"
    classified.loc[heavy & (moments["skew"] > 0), "kind"] = "prediction"
    classified.loc[heavy & (moments["skew"] < 0), "kind"] = "suppression"
    return classified


def neuron_counts(classified: pd.DataFrame) -> pd.DataFrame:
    """Prediction and suppression neurons per layer (per model too, if a ``model`` column exists).

    Returns:
        Columns ``[model,] layer, relative_depth, prediction, suppression``; every
        layer present in the input gets a row, zero counts included.

    Example:
        >>> import pandas as pd
        >>> table = pd.DataFrame({"layer": [0, 1, 1], "relative_depth": [0.0, 1.0, 1.0],
        ...                       "kind": ["other", "prediction", "suppression"]})
        >>> neuron_counts(table)[["layer", "prediction", "suppression"]].values.tolist()
        [[0, 0, 0], [1, 1, 1]]
    """
    if "kind" not in classified.columns:
        raise ConfigError("the table has no 'kind' column; pass the output of classify_neurons")
    keys = [key for key in ("model", "layer", "relative_depth") if key in classified.columns]
    counts = (
        pd.crosstab([classified[key] for key in keys], classified["kind"])
        .reindex(columns=["prediction", "suppression"], fill_value=0)
        .reset_index()
    )
    counts.columns.name = None
    return counts


TokenClass = Sequence[int] | Callable[[str], bool]
"""A token class: a list of token ids, or a predicate on the decoded token string."""


def token_class_mask(model: LoadedModel, token_class: TokenClass) -> Tensor:
    """A boolean mask over the unembedding's vocabulary marking the class.

    A predicate is applied to each token decoded on its own (ids beyond the
    tokenizer's vocabulary decode to ``""``).

    Raises:
        ConfigError: An id is out of range, or the class is empty or the whole vocabulary.
    """
    d_vocab = int(model.W_U.shape[1])
    if callable(token_class):
        mask = torch.tensor([bool(token_class(text)) for text in _decoded_vocabulary(model, d_vocab)])
    else:
        mask = _id_mask(token_class, d_vocab)
    if not 0 < int(mask.sum()) < d_vocab:
        raise ConfigError(
            f"the token class holds {int(mask.sum())} of {d_vocab} tokens; "
            "it must hold some tokens but not all: change the ids or the predicate"
        )
    return mask


def _id_mask(ids: Sequence[int], d_vocab: int) -> Tensor:
    ids_list = [int(i) for i in ids]
    bad = [i for i in ids_list if not 0 <= i < d_vocab]
    if bad:
        raise ConfigError(f"token ids {bad[:5]} are outside the vocabulary 0..{d_vocab - 1}")
    mask = torch.zeros(d_vocab, dtype=torch.bool)
    mask[ids_list] = True
    return mask


def _decoded_vocabulary(model: LoadedModel, d_vocab: int) -> list[str]:
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ConfigError("the model has no tokenizer to decode tokens; pass token ids instead")
    n_known = min(len(tokenizer), d_vocab)
    texts = tokenizer.batch_decode([[i] for i in range(n_known)])
    return texts + [""] * (d_vocab - n_known)


def class_neurons(
    model: LoadedModel,
    token_class: TokenClass,
    *,
    layers: Iterable[int] | int | None = None,
    top_k: int = 20,
) -> pd.DataFrame:
    """Neurons whose direct logit effect most favours (or disfavours) a class of tokens.

    The score of a neuron is the mean of ``d[l, n] . W_U[:, t]`` over tokens ``t``
    in the class minus its mean over the other tokens, where ``d[l, n]`` is the
    direction the neuron writes into the residual stream (:func:`output_directions`).
    It equals ``d[l, n] . (mean class column - mean other column)``, which is how it
    is computed, and it does not depend on centring ``W_U``.

    Args:
        model: A ``TransformerBridge``.
        token_class: Token ids, or a predicate on each decoded token string,
            e.g. ``lambda s: s.endswith("ing")``.
        layers: Layers to search (0-based); all by default.
        top_k: How many neurons to return, largest ``|score|`` first.

    Returns:
        ``layer``, ``neuron``, ``relative_depth``, ``score``, ``direction``
        (``"promotes"`` when score > 0, else ``"suppresses"``).

    Example:
        >>> class_neurons(model, lambda s: s.endswith("ing"), top_k=5)  # doctest: +SKIP
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"top_k must be a positive int, got {top_k!r}")
    chosen = _layers(model, layers)
    mask = token_class_mask(model, token_class)
    with torch.inference_mode():
        W_U = model.W_U.detach().float()
        mask = mask.to(W_U.device)
        direction = W_U[:, mask].mean(dim=1) - W_U[:, ~mask].mean(dim=1)
        scores = torch.stack([output_directions(model, layer) @ direction for layer in chosen])
    return _top_scores(scores, chosen, n_layers_of(model), top_k)


def _top_scores(scores: Float[Tensor, "layers d_mlp"], layers: list[int], n_layers: int, top_k: int) -> pd.DataFrame:
    flat = scores.flatten()
    top = flat.abs().topk(min(top_k, flat.numel())).indices
    d_mlp = scores.shape[1]
    rows = [
        {
            "layer": layers[int(index) // d_mlp],
            "neuron": int(index) % d_mlp,
            "relative_depth": relative_depth(layers[int(index) // d_mlp], n_layers),
            "score": float(flat[index]),
            "direction": "promotes" if float(flat[index]) > 0 else "suppresses",
        }
        for index in top
    ]
    return pd.DataFrame(rows)

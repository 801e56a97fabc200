"""Layer-to-layer similarity of representations by linear CKA (section 7 of Lad et al.).

Linear centred kernel alignment compares two sets of features of the same ``n``
examples, of any widths: with Gram matrices ``K = X X^T`` and ``L = Y Y^T``,
``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``. It is 1 for identical features
and invariant to orthogonal transforms and isotropic scaling of either set.

Estimator: the plain (biased) HSIC inflates CKA at small ``n`` (about 0.2 for
independent features at n = 64), so everything here uses the *unbiased* HSIC of Song
et al. (2012) on Gram matrices with zeroed diagonals, and -- for a corpus too large
for one Gram matrix -- the *minibatch* CKA of Nguyen, Raghu & Kornblith (2021):
each of the three HSIC terms is averaged over minibatches and the ratio is taken
once at the end (:class:`MinibatchCKA`). The unbiased HSIC needs ``n > 3`` examples
per minibatch. It is unchanged by shifting the features, so each minibatch is
centred (in float64) before its Gram matrix is formed, for numerical stability.
The unbiased estimate of a weak similarity can be slightly negative.

:func:`cka_matrix` applies this to a model: one minibatch per batch of documents,
made of the non-BOS token representations of every layer at one hook.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from stages_of_inference.activations import DEFAULT_BATCH_SIZE, cached_activations
from stages_of_inference.devices import accumulation_dtype
from stages_of_inference.errors import ConfigError
from stages_of_inference.layers import check_layers, n_layers_of
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.tokens import check_windows

MIN_EXAMPLES = 4
"""Fewest examples per minibatch: the unbiased HSIC divides by ``n (n - 3)``."""

SHORT_HOOKS = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")
"""Hook names :func:`cka_matrix` accepts without a template (``blocks.{layer}.hook_<name>``)."""


def _as_features(features: Tensor | np.ndarray, what: str) -> Float[Tensor, "n d"]:
    tensor = torch.as_tensor(features).detach()
    tensor = tensor.to(accumulation_dtype(tensor.device))
    if tensor.ndim != 2:
        raise ConfigError(f"{what} must be a 2-d [examples, features] array, got shape {tuple(tensor.shape)}")
    if tensor.shape[0] < MIN_EXAMPLES:
        raise ConfigError(f"{what} has {tensor.shape[0]} examples; the unbiased HSIC needs at least {MIN_EXAMPLES}")
    return tensor


def gram(features: Float[Tensor, "n d"]) -> Float[Tensor, "n n"]:
    """The linear-kernel Gram matrix of column-centred features, in float64.

    Example:
        >>> import torch
        >>> gram(torch.tensor([[1.0, 0.0], [3.0, 0.0]])).tolist()
        [[1.0, -1.0], [-1.0, 1.0]]
    """
    x = features.detach().to(accumulation_dtype(features.device))
    x = x - x.mean(dim=0, keepdim=True)
    return x @ x.T


def _check_grams(K: Tensor, L: Tensor) -> int:
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape != L.shape:
        raise ConfigError(f"Gram matrices must be square and of equal shape, got {tuple(K.shape)} and {tuple(L.shape)}")
    if K.shape[0] < MIN_EXAMPLES:
        raise ConfigError(f"the unbiased HSIC needs at least {MIN_EXAMPLES} examples, got {K.shape[0]}")
    return int(K.shape[0])


def hsic_unbiased(K: Float[Tensor, "n n"], L: Float[Tensor, "n n"]) -> Tensor:
    """Unbiased HSIC estimator of Song et al. (2012), eq. 5.

    With ``K~``, ``L~`` the Gram matrices with zeroed diagonals and ``1`` the ones vector:
    ``[tr(K~ L~) + (1'K~1)(1'L~1) / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))``.

    Example:
        >>> import torch
        >>> x = torch.arange(6.0).reshape(6, 1)
        >>> float(hsic_unbiased(gram(x), gram(x)))
        10.5
    """
    n = _check_grams(K, L)
    K_tilde = K.to(accumulation_dtype(K.device)).clone().fill_diagonal_(0)
    L_tilde = L.to(accumulation_dtype(L.device)).clone().fill_diagonal_(0)
    trace = (K_tilde * L_tilde).sum()
    sums = K_tilde.sum() * L_tilde.sum() / ((n - 1) * (n - 2))
    cross = K_tilde.sum(dim=0) @ L_tilde.sum(dim=1) * 2 / (n - 2)
    return (trace + sums - cross) / (n * (n - 3))


def hsic_biased(K: Float[Tensor, "n n"], L: Float[Tensor, "n n"]) -> Tensor:
    """The plain (biased) HSIC ``tr(K H L H) / (n - 1)^2``, ``H`` the centring matrix.

    Provided for comparison: it overestimates the dependence of independent features.

    Example:
        >>> import torch
        >>> x = torch.arange(6.0).reshape(6, 1)
        >>> float(hsic_biased(gram(x), gram(x)))  # the squared sample variance, 3.5 ** 2
        12.25
    """
    n = _check_grams(K, L)
    dtype = accumulation_dtype(K.device)
    H = torch.eye(n, dtype=dtype, device=K.device) - 1.0 / n
    return torch.trace(K.to(dtype) @ H @ L.to(dtype) @ H) / (n - 1) ** 2


def linear_cka(
    x: Float[Tensor, "n d1"] | np.ndarray, y: Float[Tensor, "n d2"] | np.ndarray, *, unbiased: bool = True
) -> float:
    """Linear CKA between two feature sets of the same examples (widths may differ).

    Args:
        x: Features ``[n, d1]`` (torch or numpy).
        y: Features ``[n, d2]`` of the same ``n`` examples.
        unbiased: Use the unbiased HSIC (default); ``False`` gives the classic biased CKA,
            ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` on centred features.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g)
        >>> round(linear_cka(x, 3 * x @ torch.linalg.qr(torch.randn(8, 8, generator=g))[0]), 6)
        1.0
    """
    x64, y64 = _as_features(x, "x"), _as_features(y, "y")
    if x64.shape[0] != y64.shape[0]:
        raise ConfigError(f"x and y must hold the same examples, got {x64.shape[0]} and {y64.shape[0]} rows")
    hsic = hsic_unbiased if unbiased else hsic_biased
    K, L = gram(x64), gram(y64)
    return float(hsic(K, L) / torch.sqrt(hsic(K, K) * hsic(L, L)))


class MinibatchCKA:
    """Accumulates minibatch CKA between several feature sets at once.

    Each :meth:`update` takes the features of the same ``n`` examples under ``k``
    representations (e.g. ``k`` layers) and adds the ``k x k`` unbiased HSIC matrix
    of that minibatch; :meth:`matrix` divides the mean cross terms by the geometric
    mean of the mean self terms (Nguyen, Raghu & Kornblith 2021).

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> accumulator = MinibatchCKA()
        >>> for _ in range(3):
        ...     x = torch.randn(32, 6, generator=g)
        ...     accumulator.update([x, 2 * x, torch.randn(32, 4, generator=g)])
        >>> accumulator.matrix().round(decimals=2)[0, :2].tolist()
        [1.0, 1.0]
    """

    def __init__(self) -> None:
        self._hsic_sum: Float[Tensor, "k k"] | None = None
        self.n_minibatches = 0
        """How many minibatches have been added."""

    def update(self, features: Sequence[Float[Tensor, "n _"]]) -> None:
        """Add one minibatch: ``k`` feature sets ``[n, d_i]`` of the same ``n`` examples."""
        hsic = hsic_matrix(features)
        if self._hsic_sum is not None and hsic.shape != self._hsic_sum.shape:
            raise ConfigError(f"this accumulator holds {self._hsic_sum.shape[0]} feature sets; got {hsic.shape[0]}")
        self._hsic_sum = hsic if self._hsic_sum is None else self._hsic_sum + hsic
        self.n_minibatches += 1

    def matrix(self) -> Float[Tensor, "k k"]:
        """The ``k x k`` CKA matrix from the minibatches seen so far (float64)."""
        if self._hsic_sum is None:
            raise ConfigError("no minibatch was added; call update() first")
        mean = self._hsic_sum / self.n_minibatches
        scale = torch.sqrt(torch.outer(mean.diagonal(), mean.diagonal()))
        return mean / scale


def hsic_matrix(features: Sequence[Float[Tensor, "n _"]]) -> Float[Tensor, "k k"]:
    """Unbiased HSIC between every pair of ``k`` feature sets of the same ``n`` examples.

    Vectorised form of :func:`hsic_unbiased`: with ``F`` the flattened zero-diagonal
    Gram matrices, ``s`` their sums and ``R`` their row sums, the matrix is
    ``[F F' + s s' / ((n-1)(n-2)) - 2/(n-2) R R'] / (n(n-3))``.
    Memory: ``k * n^2`` float64 values.
    """
    tensors = [_as_features(f, f"feature set {i}") for i, f in enumerate(features)]
    if not tensors:
        raise ConfigError("pass at least one feature set")
    n = tensors[0].shape[0]
    if any(t.shape[0] != n for t in tensors):
        raise ConfigError(f"every feature set must hold the same examples; got rows {[t.shape[0] for t in tensors]}")
    grams = torch.stack([gram(t).fill_diagonal_(0) for t in tensors])
    flat = grams.flatten(start_dim=1)
    row_sums = grams.sum(dim=2)
    totals = row_sums.sum(dim=1)
    combined = flat @ flat.T + torch.outer(totals, totals) / ((n - 1) * (n - 2))
    combined = combined - row_sums @ row_sums.T * 2 / (n - 2)
    return combined / (n * (n - 3))


def hook_template(hook: str) -> str:
    """A hook-name template with ``{layer}``, from a short name or a template.

    Example:
        >>> hook_template("resid_post")
        'blocks.{layer}.hook_resid_post'
        >>> hook_template("blocks.{layer}.mlp.hook_post")
        'blocks.{layer}.mlp.hook_post'
    """
    if hook in SHORT_HOOKS:
        return f"blocks.{{layer}}.hook_{hook}"
    if "{layer}" not in hook:
        raise ConfigError(
            f"hook {hook!r} is neither one of {', '.join(SHORT_HOOKS)} nor a template "
            "containing '{layer}' (e.g. 'blocks.{layer}.mlp.hook_post')"
        )
    return hook


def cka_hook_names(
    model: LoadedModel, hook: str = "resid_post", layers: Iterable[int] | int | None = None
) -> list[str]:
    """The hooks :func:`cka_matrix` reads: ``hook`` at each of ``layers`` (all by default).

    Raises:
        ConfigError: Bad hook or layers.

    Example:
        >>> cka_hook_names(model, "mlp_out", [0, 2])  # doctest: +SKIP
        ['blocks.0.hook_mlp_out', 'blocks.2.hook_mlp_out']
    """
    template = hook_template(hook)
    return [template.format(layer=layer) for layer in _chosen_layers(model, layers)]


def _chosen_layers(model: LoadedModel, layers: Iterable[int] | int | None) -> list[int]:
    return list(range(n_layers_of(model))) if layers is None else check_layers(layers, n_layers_of(model))


def _check_minibatch_sizes(tokens: Tensor, batch_size: int) -> None:
    """Every batch of documents must give at least MIN_EXAMPLES non-BOS tokens."""
    check_windows(tokens, what="cka_matrix", min_len=2)
    n_docs = tokens.shape[0]
    smallest = min(batch_size, n_docs % batch_size or batch_size) if n_docs else 0
    if smallest * (tokens.shape[1] - 1) < MIN_EXAMPLES:
        raise ConfigError(
            f"a minibatch of {smallest} windows x {tokens.shape[1] - 1} non-BOS tokens is below "
            f"{MIN_EXAMPLES} examples; raise batch_size or seq_len, or pass a multiple of batch_size windows"
        )


def _non_bos_features(
    model: LoadedModel, tokens: Int[Tensor, "batch pos"], names: list[str], batch_size: int
) -> Iterator[list[Float[Tensor, "n d"]]]:
    """Per batch, the activations at each named hook, BOS dropped, flattened to ``[n, d]``."""
    try:
        for _, cache in cached_activations(model, tokens, names, batch_size):
            missing = [name for name in names if name not in cache]
            if missing:
                raise ConfigError(f"the model has no hook {missing[0]!r}; pick another hook")
            yield [cache[name][:, 1:].flatten(0, -2) for name in names]
    except KeyError as error:  # the bridge's complaint about a hook it does not serve
        raise ConfigError(f"the model lacks a requested hook ({error}); pick another hook") from None


def cka_matrix(
    model: LoadedModel,
    tokens: Int[Tensor, "batch pos"],
    *,
    hook: str = "resid_post",
    batch_size: int = DEFAULT_BATCH_SIZE,
    layers: Iterable[int] | int | None = None,
) -> pd.DataFrame:
    """Minibatch linear CKA between the representations of every pair of layers.

    Each batch of ``batch_size`` windows is one minibatch; its examples are the
    token positions 1.. of every window (BOS excluded), flattened.

    Args:
        model: A ``TransformerBridge``.
        tokens: BOS-first windows from :func:`stages_of_inference.corpus.load_corpus`.
        hook: ``resid_post``, ``resid_pre``, ``resid_mid``, ``attn_out``, ``mlp_out``,
            or a hook-name template with ``{layer}``.
        batch_size: Windows per forward pass and per minibatch.
        layers: Layers to compare (0-based); all by default.

    Returns:
        A square float DataFrame, index and columns the layer numbers.

    Raises:
        ConfigError: Bad hook, layers, or minibatches under 4 tokens.

    Example:
        >>> matrix = cka_matrix(model, tokens, layers=[0, 10, 20])  # doctest: +SKIP
        >>> matrix.loc[10, 20]  # doctest: +SKIP
    """
    chosen = _chosen_layers(model, layers)
    names = cka_hook_names(model, hook, chosen)
    _check_minibatch_sizes(tokens, batch_size)
    accumulator = MinibatchCKA()
    for features in _non_bos_features(model, tokens, names, batch_size):
        accumulator.update(features)
    values = accumulator.matrix().cpu().numpy()
    return pd.DataFrame(values, index=pd.Index(chosen, name="layer"), columns=pd.Index(chosen, name="layer"))

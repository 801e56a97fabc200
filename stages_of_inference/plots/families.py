"""Figures of the intervention families beyond the paper: block deletions, all swaps, component deletions.

Each function takes a :func:`~stages_of_inference.sweep.robustness_sweep` table of
one model (the family's rows; other rows are ignored) and returns a plotly figure.
:func:`block_grid` and :func:`swap_grid` are the heatmaps' matrices, for your own
analyses: one cell per intervention, NaN where the table has none.

Example:
    >>> import pandas as pd
    >>> table = pd.DataFrame({"intervention": "delete_block", "layer": [0, 1, 0],
    ...     "label": ["delete layers 0-1", "delete layers 1-2", "delete layers 0-2"], "kl": [1.0, 2.0, 3.0]})
    >>> block_grid(table, "kl")  # doctest: +NORMALIZE_WHITESPACE
    start    0    1
    width
    2      1.0  2.0
    3      3.0  NaN
"""

from __future__ import annotations

import re
from itertools import cycle

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stages_of_inference.errors import ConfigError
from stages_of_inference.plots.robustness import PANELS
from stages_of_inference.plots.stages import add_stage_bands
from stages_of_inference.plots.style import DEPTH_AXIS_TITLE, add_band, by_model

BLOCK_LABEL = re.compile(r"delete layers (\d+)-(\d+)")
"""A block deletion's label (:attr:`Intervention.label`): its first and last layer."""

SWAP_LABEL = re.compile(r"swap layers (\d+)-(\d+)")
"""A swap's label: its two layers, lower first."""

COMPONENT_KINDS = {
    "delete_attn": ("attention only", "#1f77b4"),
    "delete_mlp": ("MLP only", "#ff7f0e"),
    "delete": ("whole layer", "#444444"),
}
"""Each kind of :func:`plot_component_deletions`: its legend name and colour."""

MODEL_DASHES = ("solid", "dash", "dot", "dashdot")
"""The line style of each model in :func:`plot_component_deletions` (the colour is the kind's)."""

BLOCK_METRICS = ("kl", "relative_accuracy")
"""The two panels of :func:`plot_block_deletions`."""


def block_grid(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``metric`` of every block deletion as a width x start matrix (NaN where no block was deleted).

    Raises:
        ConfigError: The table has no block deletions, or holds several models.
    """
    spans = _spans(table, "delete_block", BLOCK_LABEL)
    grid = spans.assign(width=spans.second - spans.first + 1).pivot(index="width", columns="first", values=metric)
    widths = range(int(grid.index.min()), int(grid.index.max()) + 1)
    return (
        grid.astype(float)
        .reindex(index=widths, columns=range(int(grid.columns.max()) + 1))
        .rename_axis(index="width", columns="start")
    )


def swap_grid(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``metric`` of every swap as an i x j matrix, ``i < j`` (NaN where the pair was not swapped).

    Rows are every lower layer ``0..L-2``, columns every upper layer ``1..L-1``, so the
    cells below the diagonal are NaN.

    Raises:
        ConfigError: The table has no swaps, or holds several models.
    """
    spans = _spans(table, "swap", SWAP_LABEL)
    last = int(spans.second.max())
    grid = spans.pivot(index="first", columns="second", values=metric).astype(float)
    return grid.reindex(index=range(last), columns=range(1, last + 1)).rename_axis(index="i", columns="j")


def plot_block_deletions(table: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Start x width heatmaps of block deletion: KL (left) and relative accuracy (right).

    Example:
        >>> table = pd.DataFrame({"intervention": "delete_block", "layer": [0, 1, 0],
        ...     "label": ["delete layers 0-1", "delete layers 1-2", "delete layers 0-2"],
        ...     "kl": [1.0, 2.0, 3.0], "relative_accuracy": [0.9, 0.8, 0.5]})
        >>> figure = plot_block_deletions(table)
        >>> [trace.z.shape for trace in figure.data]
        [(2, 2), (2, 2)]
    """
    figure = make_subplots(
        rows=1, cols=len(BLOCK_METRICS), subplot_titles=[PANELS[m] for m in BLOCK_METRICS], horizontal_spacing=0.12
    )
    for col, metric in enumerate(BLOCK_METRICS, start=1):
        grid = block_grid(table, metric)
        figure.add_trace(
            go.Heatmap(
                z=grid.to_numpy(),
                x=grid.columns,
                y=grid.index,
                colorscale="Viridis" if metric == "kl" else "RdBu",
                colorbar={"x": 0.44 if col == 1 else 1.0, "len": 0.9},
                hovertemplate="first layer %{x}, width %{y}<br>%{z:.4g}<extra></extra>",
                name=metric,
            ),
            row=1,
            col=col,
        )
        figure.update_xaxes(title_text="first deleted layer", dtick=1 if grid.shape[1] <= 20 else None, row=1, col=col)
        figure.update_yaxes(title_text="layers deleted (width)", dtick=1, row=1, col=col)
    figure.update_layout(height=380, title=title or "Deleting a block of layers", template="plotly_white")
    return figure


def plot_all_swaps(table: pd.DataFrame, metric: str = "kl", *, title: str | None = None) -> go.Figure:
    """An i x j heatmap of ``metric`` when layers ``i < j`` are swapped (upper triangle).

    Example:
        >>> table = pd.DataFrame({"intervention": "swap", "layer": [0, 0, 1],
        ...     "label": ["swap layers 0-1", "swap layers 0-2", "swap layers 1-2"], "kl": [1.0, 2.0, 3.0]})
        >>> plot_all_swaps(table).data[0].z.tolist()
        [[1.0, 2.0], [nan, 3.0]]
    """
    grid = swap_grid(table, metric)
    figure = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=grid.columns,
            y=grid.index,
            colorscale="Viridis",
            colorbar={"title": {"text": metric}},
            hovertemplate="swap layers %{y} and %{x}<br>%{z:.4g}<extra></extra>",
        )
    )
    figure.update_layout(
        title=title or f"Swapping any two layers: {PANELS.get(metric, metric)}",
        xaxis_title="upper layer j",
        yaxis_title="lower layer i",
        yaxis_autorange="reversed",
        height=520,
        width=600,
        template="plotly_white",
    )
    return figure


def plot_component_deletions(
    table: pd.DataFrame,
    stages: pd.DataFrame | None = None,
    metrics: list[str] | None = None,
    *,
    title: str | None = None,
) -> go.Figure:
    """Attention-only, MLP-only and whole-layer deletion against relative depth, with 95 % CI bands.

    Args:
        table: A sweep table with ``delete_attn``, ``delete_mlp`` and (optional)
            ``delete`` rows; with a ``model`` column, one dash style per model.
        stages: A :func:`~stages_of_inference.stages.detect_stages` table to shade behind.
        metrics: Columns to plot, one panel each (default: KL and relative accuracy).
        title: Figure title.

    Raises:
        ConfigError: The table has no attention-only or MLP-only deletions.

    Example:
        >>> table = pd.DataFrame({"intervention": ["delete_attn", "delete_mlp", "delete"],
        ...     "layer": 0, "relative_depth": 0.0, "kl": [0.1, 0.5, 1.0], "relative_accuracy": 0.9})
        >>> [trace.name for trace in plot_component_deletions(table, metrics=["kl"]).data]
        ['attention only', 'MLP only', 'whole layer']
    """
    if not {"delete_attn", "delete_mlp"} & set(table.intervention):
        raise ConfigError("the table has no attention-only or MLP-only deletions; sweep the 'components' family")
    metrics = metrics or list(BLOCK_METRICS)
    figure = make_subplots(rows=1, cols=len(metrics), subplot_titles=[PANELS.get(m, m) for m in metrics])
    models = by_model(table)
    dashes = dict(zip((name for name, _ in models), cycle(MODEL_DASHES)))
    for col, metric in enumerate(metrics, start=1):
        for name, rows in models:
            for kind, (kind_name, colour) in COMPONENT_KINDS.items():
                part = rows[rows.intervention == kind].sort_values("relative_depth")
                if part.empty:
                    continue
                label = f"{kind_name} ({name})" if name else kind_name
                low, high = f"{metric}_ci_low", f"{metric}_ci_high"
                if low in part and not part[low].isna().all():
                    add_band(
                        figure, part.relative_depth, part[low], part[high], colour, legendgroup=label, row=1, col=col
                    )
                figure.add_trace(
                    go.Scatter(
                        x=part.relative_depth,
                        y=part[metric],
                        mode="lines+markers",
                        name=label,
                        legendgroup=label,
                        showlegend=col == 1,
                        line={"color": colour, "dash": dashes.get(name, "solid")},
                        customdata=part.layer,
                        hovertemplate="layer %{customdata}<br>%{y:.4g}",
                    ),
                    row=1,
                    col=col,
                )
        figure.update_xaxes(title_text=DEPTH_AXIS_TITLE, row=1, col=col)
    figure.update_layout(
        height=420, title=title or "Deleting a layer's attention, its MLP, or the whole layer", template="plotly_white"
    )
    if stages is not None:
        add_stage_bands(figure, stages)
    return figure


def _spans(table: pd.DataFrame, kind: str, label: re.Pattern[str]) -> pd.DataFrame:
    """The rows of ``kind`` with the two layers their labels name, as ``first`` and ``second``."""
    if "model" in table.columns and table.model.nunique() > 1:
        raise ConfigError("a heatmap shows one model; pass the rows of one model (table[table.model == name])")
    rows = table[table.intervention == kind]
    if rows.empty:
        raise ConfigError(f"the table has no {kind!r} rows; sweep the family that has them (see docs/interventions.md)")
    layers = rows.label.str.extract(label).astype(int)
    return rows.assign(first=layers[0].to_numpy(), second=layers[1].to_numpy())

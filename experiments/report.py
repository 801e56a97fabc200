"""Gather every model's results into one self-contained HTML report (``results/report.html``).

For each model folder of a results directory (a subfolder holding ``run.json``) the
report overlays the paper's figures across models on relative depth, with each
model's estimated stages shaded (:mod:`stages_of_inference.stages`); tabulates the
top-1 accuracy retained under deletion and swap against the paper's 72-95 %; lists
the stage table and the findings where a model departs from the paper; and prints
each model's manifest. plotly.js is inlined once, so the page works offline; an
inline ``window.onerror`` handler records script errors in ``<div id="js-errors">``.

An analysis whose table is missing, or whose plotting function does not exist yet,
is skipped with a note rather than failing the report.

Example:
    python -m experiments.report --results results/
"""

from __future__ import annotations

import argparse
import html
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.offline

from stages_of_inference.errors import ResultsError, StagesError
from stages_of_inference.experiments.command import run_main
from stages_of_inference.plots.robustness import combine_tables, plot_robustness
from stages_of_inference.plots.stages import add_stage_bands
from stages_of_inference.runs.atomic import read_json, write_text
from stages_of_inference.runs.identity import IDENTITY_FILE
from stages_of_inference.stages import PAPER_RETENTION, detect_stages

REPORT_FILE = "report.html"
ERROR_RECORDER = """<div id="js-errors"></div>
<script>
window.onerror = function (message, source, line) {
  var item = document.createElement("div");
  item.textContent = message + " (" + source + ":" + line + ")";
  document.getElementById("js-errors").appendChild(item);
};
</script>"""
CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1400px;color:#222;padding:0 1rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3}td.text,th.text{text-align:left}pre{background:#f7f7f7;padding:.75rem;overflow-x:auto;font-size:.8rem}
.note{color:#666;font-style:italic}.outside{background:#fde2e2}.figure{margin:1.5rem 0}"""


@dataclass
class ModelResults:
    """The tables found in one model's results folder."""

    name: str
    folder: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def get(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)


def find_models(results_dir: Path) -> list[ModelResults]:
    """Every model folder (a subfolder with ``run.json``), with its parquet tables loaded.

    Raises:
        ResultsError: No model folder in ``results_dir``.
    """
    folders = sorted(p for p in Path(results_dir).iterdir() if (p / IDENTITY_FILE).is_file()) if Path(results_dir).is_dir() else []
    if not folders:
        raise ResultsError(f"{results_dir} holds no model folder with {IDENTITY_FILE}; run an experiment first")
    return [
        ModelResults(folder.name, folder, {path.stem: pd.read_parquet(path) for path in sorted(folder.glob("*.parquet"))})
        for folder in folders
    ]


def neuron_counts_of(model: ModelResults) -> pd.DataFrame | None:
    """Per-layer prediction/suppression counts from whichever neuron table the folder holds."""
    table = model.get("neuron_counts")
    table = table if table is not None else model.get("neurons")
    if table is None or {"prediction", "suppression"} <= set(table.columns):
        return table
    neurons = importlib.import_module("stages_of_inference.analyses.neurons")
    if "kind" not in table.columns:
        table = neurons.classify_neurons(table)
    return neurons.neuron_counts(table)


def stage_estimates(models: list[ModelResults]) -> dict[str, tuple[pd.DataFrame, list[str]] | str]:
    """Each model's stage table and findings, or the reason it has none."""
    estimates: dict[str, tuple[pd.DataFrame, list[str]] | str] = {}
    for model in models:
        try:
            estimate = detect_stages(
                model.get("robustness"), model.get("attention"), model.get("logit_lens"), neuron_counts_of(model)
            )
        except (StagesError, KeyError, ValueError) as error:
            estimates[model.name] = f"no stage estimate: {error}"
            continue
        estimates[model.name] = (estimate.table.assign(model=model.name), estimate.findings)
    return estimates


# ---------------------------------------------------------------- figures


@dataclass(frozen=True)
class FigureSpec:
    """How to draw one analysis: its table, its module's plot function, its x axis."""

    title: str
    table: str
    module: str
    function: str
    lens_points: bool = False
    prepare: Callable[[ModelResults], pd.DataFrame | None] | None = None


FIGURES = (
    FigureSpec("Attention to the previous 5 tokens", "attention", "attention", "plot_previous_token_attention"),
    FigureSpec("Logit lens across depth", "logit_lens", "logit_lens", "plot_logit_lens", lens_points=True),
    FigureSpec("Prediction and suppression neurons", "neurons", "neurons", "plot_neuron_counts", prepare=neuron_counts_of),
    FigureSpec("Norms of each block's outputs", "norms", "norms", "plot_component_norms"),
)
"""The depth figures overlaid across models after the robustness figure."""


def _plot_function(module: str, function: str) -> Callable[..., go.Figure] | None:
    try:
        return getattr(importlib.import_module(f"stages_of_inference.{module}"), function)
    except (ImportError, AttributeError):
        return None


def _banded(figure: go.Figure, stages: list[pd.DataFrame], *, lens_points: bool = False) -> go.Figure:
    for table in stages:
        add_stage_bands(figure, table, opacity_scale=1 / len(stages), lens_points=lens_points)
    return figure


def depth_figures(models: list[ModelResults], stages: list[pd.DataFrame]) -> list[tuple[str, go.Figure | str]]:
    """The overlaid depth figures, each with its title; a string in place of a figure says why it is skipped."""
    figures: list[tuple[str, go.Figure | str]] = []
    robustness = {m.name: m.get("robustness") for m in models if m.get("robustness") is not None}
    title = "What survives deleting or swapping one layer"
    figures.append((title, _banded(plot_robustness(combine_tables(robustness)), stages) if robustness else "no robustness table"))
    for spec in FIGURES:
        tables = {m.name: (spec.prepare(m) if spec.prepare else m.get(spec.table)) for m in models}
        tables = {name: table for name, table in tables.items() if table is not None}
        plot = _plot_function(spec.module, spec.function)
        if not tables or plot is None:
            figures.append((spec.title, f"skipped: {'no ' + spec.table + ' table' if not tables else 'no plot function yet'}"))
            continue
        try:
            figure = plot(combine_tables(tables))
        except (StagesError, KeyError, ValueError) as error:
            figures.append((spec.title, f"skipped: {error}"))
            continue
        figures.append((spec.title, _banded(figure, stages, lens_points=spec.lens_points)))
    figures.extend(_cka_figures(models))
    return figures


def _cka_figures(models: list[ModelResults]) -> list[tuple[str, go.Figure | str]]:
    plot = _plot_function("cka", "plot_cka")
    figures: list[tuple[str, go.Figure | str]] = []
    for model in models:
        table = model.get("cka")  # long form: layer_a, layer_b, cka
        if table is None or plot is None:
            continue
        matrix = table.pivot(index="layer_a", columns="layer_b", values="cka") if "cka" in table.columns else table
        figures.append((f"Layer-to-layer CKA: {model.name}", plot(matrix, title=f"Linear CKA between layers: {model.name}")))
    return figures


# ---------------------------------------------------------------- tables


def retention_table(models: list[ModelResults]) -> pd.DataFrame:
    """Min / mean / max over layers of top-1 agreement and relative accuracy, per model and intervention."""
    rows = []
    for model in models:
        table = model.get("robustness")
        if table is None:
            continue
        for kind, part in table.groupby("intervention", sort=False):
            row: dict[str, object] = {"model": model.name, "intervention": kind, "layers": len(part)}
            for metric in ("top1_agreement", "relative_accuracy"):
                for stat in ("min", "mean", "max"):
                    row[f"{metric} {stat}"] = float(getattr(part[metric], stat)())
            rows.append(row)
    return pd.DataFrame(rows)


def _cell(value: object, *, highlight: bool = False) -> str:
    css = ' class="outside"' if highlight else ""
    if isinstance(value, float):
        return f"<td{css}>{'' if pd.isna(value) else f'{value:.3g}'}</td>"
    if value is None or value is pd.NA:
        return "<td></td>"
    text_class = "" if isinstance(value, int) else ' class="text"'
    return f"<td{text_class or css}>{html.escape(str(value))}</td>"


def html_table(table: pd.DataFrame, *, percent: Sequence[str] = (), flag: Callable[[str, object], bool] | None = None) -> str:
    """A DataFrame as an escaped HTML table; ``percent`` columns shown as percentages, ``flag`` highlights cells."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    for record in table.to_dict("records"):
        cells = []
        for column, value in record.items():
            highlight = bool(flag and flag(column, value))
            if column in percent and isinstance(value, float):
                cells.append(f"<td{' class=outside' if highlight else ''}>{value:.1%}</td>")
            else:
                cells.append(_cell(value, highlight=highlight))
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _outside_paper(column: str, value: object) -> bool:
    return column.endswith("mean") and isinstance(value, float) and not PAPER_RETENTION[0] <= value <= PAPER_RETENTION[1]


# ---------------------------------------------------------------- page


def _figure_html(figure: go.Figure) -> str:
    return '<div class="figure">' + figure.to_html(full_html=False, include_plotlyjs=False) + "</div>"


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>\n{body}"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _figures_html(figures: list[tuple[str, go.Figure | str]]) -> str:
    return "\n".join(
        f"<h3>{html.escape(title)}</h3>" + (_note(figure) if isinstance(figure, str) else _figure_html(figure))
        for title, figure in figures
    )


def _stages_html(estimates: dict[str, tuple[pd.DataFrame, list[str]] | str]) -> str:
    parts = []
    for name, estimate in estimates.items():
        parts.append(f"<h3>{html.escape(name)}</h3>")
        if isinstance(estimate, str):
            parts.append(_note(estimate))
            continue
        table, findings = estimate
        parts.append(html_table(table.drop(columns=["model"])))
        items = "".join(f"<li>{html.escape(f)}</li>" for f in findings) or "<li>none: the model follows the paper's pattern on the evidence available</li>"
        parts.append(f"<h4>Findings</h4><ul>{items}</ul>")
    return "\n".join(parts)


def _subjoiner_html(models: list[ModelResults]) -> str:
    parts = [
        f"<h3>{html.escape(m.name)}</h3>" + html_table(m.get("subjoiner").head(10))  # type: ignore[union-attr]
        for m in models
        if m.get("subjoiner") is not None
    ]
    return _section("Subjoiner heads (top 10)", "\n".join(parts)) if parts else ""


def _manifests_html(models: list[ModelResults]) -> str:
    parts = []
    for model in models:
        path = model.folder / "manifest.json"
        source = path if path.is_file() else model.folder / IDENTITY_FILE
        label = "manifest.json" if path.is_file() else f"no manifest.json; {IDENTITY_FILE}"
        text = json.dumps(read_json(source), indent=2)
        parts.append(f"<h3>{html.escape(model.name)} ({html.escape(label)})</h3><pre>{html.escape(text)}</pre>")
    return "\n".join(parts)


def render_report(models: list[ModelResults]) -> str:
    """The report page as HTML text."""
    estimates = stage_estimates(models)
    stages = [e[0] for e in estimates.values() if not isinstance(e, str)]
    retention = retention_table(models)
    names = ", ".join(m.name for m in models)
    body = [
        f"<h1>Stages of inference: {html.escape(names)}</h1>",
        _note("Lad et al., arXiv 2406.19384. Shaded bands: each model's estimated stages "
              "(see the stage tables; with several models the bands overlap, each at reduced opacity)."),
        _section("Figures across depth", _figures_html(depth_figures(models, stages))),
        _section(
            "Top-1 accuracy retained",
            _note(f"Over all layers; the paper reports {PAPER_RETENTION[0]:.0%}-{PAPER_RETENTION[1]:.0%} retained. "
                  "Means outside that range are highlighted.")
            + (html_table(retention, percent=[c for c in retention.columns if " " in c], flag=_outside_paper)
               if len(retention) else _note("no robustness table")),
        ),
        _section("Estimated stages and findings", _stages_html(estimates)),
        _subjoiner_html(models),
        _section("Manifests", _manifests_html(models)),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Stages of inference report</title><style>{CSS}</style>\n{ERROR_RECORDER}\n"
        f"<script>{plotly.offline.get_plotlyjs()}</script></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def build_report(results_dir: Path, out: Path | None = None) -> Path:
    """Write the report of every model in ``results_dir`` to ``out`` (default ``results_dir/report.html``).

    Raises:
        ResultsError: No model folder found, or the report cannot be written.

    Example:
        >>> build_report(Path("results"))  # doctest: +SKIP
        PosixPath('results/report.html')
    """
    models = find_models(Path(results_dir))
    return write_text(render_report(models), Path(out) if out else Path(results_dir) / REPORT_FILE)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""

    def body() -> None:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--results", type=Path, default=Path("results"), help="folder of model result folders")
        parser.add_argument("--out", type=Path, default=None, help="report file (default RESULTS/report.html)")
        namespace = parser.parse_args(argv)
        print(f"report: {build_report(namespace.results, namespace.out)}")

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())

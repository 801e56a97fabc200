"""Assemble the report page from figures and tables, and write it next to the results."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import plotly.graph_objects as go
import plotly.offline

from stages_of_inference.report.estimates import ModelStages, stage_estimates
from stages_of_inference.report.figures import (
    ANCHORS,
    Figure,
    depth_figures,
    family_figures,
    figure_anchor,
    pruning_figures,
)
from stages_of_inference.report.results import ModelResults, find_models
from stages_of_inference.report.tables import html_table, outside_paper, retention_table
from stages_of_inference.report.verdicts import models_verdicts, write_verdicts
from stages_of_inference.runs.atomic import read_json, write_text
from stages_of_inference.runs.identity import IDENTITY_FILE
from stages_of_inference.stages import PAPER_RETENTION
from stages_of_inference.verdicts import Verdict

REPORT_FILE = "report.html"
"""The report's file name in the results folder."""

ERROR_RECORDER = """<div id="js-errors"></div>
<script>
window.onerror = function (message, source, line) {
  var item = document.createElement("div");
  item.textContent = message + " (" + source + ":" + line + ")";
  document.getElementById("js-errors").appendChild(item);
};
</script>"""
"""Records script errors in ``<div id="js-errors">`` (the browser test reads it)."""

CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1400px;color:#222;padding:0 1rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3}td.text,th.text{text-align:left}pre{background:#f7f7f7;padding:.75rem;overflow-x:auto;font-size:.8rem}
.note{color:#666;font-style:italic}.verdict-holds{background:#e2f5e2}.verdict-fails{background:#fde2e2}.outside{background:#fde2e2}.figure{margin:1.5rem 0}"""


def build_report(results_dir: Path | str, out: Path | str | None = None) -> Path:
    """Write the report of every model in ``results_dir`` to ``out`` (default ``results_dir/report.html``).

    The verdicts the report opens with are also written to ``results_dir/verdicts.json``
    (and each model's to its folder), so a reproduction's summary carries them.

    Raises:
        ResultsError: No model folder found, or the report cannot be written.

    Example:
        >>> build_report(Path("results"))  # doctest: +SKIP
        PosixPath('results/report.html')
    """
    models = find_models(Path(results_dir))
    verdicts = models_verdicts(models)
    write_verdicts(Path(results_dir), models, verdicts)
    return write_text(render_report(models, verdicts), Path(out) if out else Path(results_dir) / REPORT_FILE)


def render_report(models: list[ModelResults], verdicts: list[Verdict] | None = None) -> str:
    """The report page of ``models`` as HTML text, opening with ``verdicts`` (by default computed here)."""
    verdicts = models_verdicts(models) if verdicts is None else verdicts
    estimates = stage_estimates(models)
    stages = [estimate.table for estimate in estimates if estimate.table is not None]
    retention = retention_table(models)
    names = ", ".join(m.name for m in models)
    body = [
        f"<h1>Stages of inference: {html.escape(names)}</h1>",
        _note(
            "Lad et al., arXiv 2406.19384. Shaded bands: each model's estimated stages "
            "(see the stage tables; with several models the bands overlap, each at reduced opacity)."
        ),
        _section("The paper's claims", _verdicts_html(verdicts)),
        _section("Figures across depth", _figures_html(depth_figures(models, stages))),
        _section(
            "Top-1 accuracy retained",
            _note(
                f"Over all layers; the paper reports {PAPER_RETENTION[0]:.0%}-{PAPER_RETENTION[1]:.0%} retained. "
                "Means outside that range are highlighted."
            )
            + (
                html_table(retention, percent=[c for c in retention.columns if " " in c], flag=outside_paper)
                if len(retention)
                else _note("no robustness table")
            ),
        ),
        _section("Estimated stages and findings", _stages_html(estimates)),
        _families_html(models, estimates),
        _subjoiner_html(models),
        _pruning_html(models),
        _section("Manifests", _manifests_html(models)),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Stages of inference report</title><style>{CSS}</style>\n{ERROR_RECORDER}\n"
        f"<script>{plotly.offline.get_plotlyjs()}</script></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _figure_html(figure: go.Figure) -> str:
    return '<div class="figure">' + figure.to_html(full_html=False, include_plotlyjs=False) + "</div>"


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>\n{body}"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _figures_html(figures: list[Figure]) -> str:
    return "\n".join(
        _heading(title) + (_note(figure) if isinstance(figure, str) else _figure_html(figure))
        for title, figure in figures
    )


def _heading(title: str) -> str:
    anchor = ANCHORS.get(title)
    return f'<h3 id="{anchor}">{html.escape(title)}</h3>' if anchor else f"<h3>{html.escape(title)}</h3>"


def _verdicts_html(verdicts: list[Verdict]) -> str:
    """The verdict table: each claim per model, its verdict, effect and interval, linked to its figure."""
    head = "".join(f"<th>{name}</th>" for name in ("claim", "model", "verdict", "effect", "CI", "alpha", "n", "test"))
    rows = []
    for v in verdicts:
        claim = f'<a href="#{figure_anchor(v.figure)}">{html.escape(v.claim)}</a>'
        interval = "" if math.isnan(v.ci_low) else f"[{v.ci_low:.3g}, {v.ci_high:.3g}]"
        effect = "" if math.isnan(v.effect) else f"{v.effect:.3g}"
        test = html.escape(v.test + (f" — inconclusive: {v.note}" if v.note else ""))
        rows.append(
            f'<tr><td class="text">{claim}</td><td class="text">{html.escape(v.model)}</td>'
            f'<td class="text verdict-{v.verdict}">{v.verdict}</td><td>{effect}</td><td>{interval}</td>'
            f'<td>{v.alpha:.3g}</td><td>{v.n}</td><td class="text">{test}</td></tr>'
        )
    note = _note(
        "Each claim tested on each model's saved results (docs/verdicts.md): holds / fails when the whole "
        "interval lies on one side, else inconclusive. Alpha is per claim, Bonferroni-corrected within each "
        "family (one model's claims; the cross-model claims). Each claim links to its figure."
    )
    return note + f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _stages_html(estimates: list[ModelStages]) -> str:
    parts = []
    for estimate in estimates:
        parts.append(f"<h3>{html.escape(estimate.model)}</h3>")
        if estimate.table is None:
            parts.append(_note(estimate.missing or "no stage estimate"))
            continue
        parts.append(html_table(estimate.table.drop(columns=["model"])))
        items = "".join(f"<li>{html.escape(f)}</li>" for f in estimate.findings)
        items = items or "<li>none: the model follows the paper's pattern on the evidence available</li>"
        parts.append(f"<h4>Findings</h4><ul>{items}</ul>")
    return "\n".join(parts)


def _families_html(models: list[ModelResults], estimates: list[ModelStages]) -> str:
    stages = {estimate.model: estimate.table for estimate in estimates if estimate.table is not None}
    figures = family_figures(models, stages)
    if not figures:
        return ""
    return _section(
        "Beyond the paper: intervention families",
        _note(
            "Sweeps of --interventions blocks, components and swaps-all (docs/interventions.md); "
            "blank heatmap cells are interventions not run."
        )
        + _figures_html(figures),
    )


def _subjoiner_html(models: list[ModelResults]) -> str:
    parts = [
        f"<h3>{html.escape(model.name)}</h3>" + html_table(table.head(10))
        for model in models
        if (table := model.get("subjoiner")) is not None
    ]
    return _section("Subjoiner heads (top 10)", "\n".join(parts)) if parts else ""


def _pruning_html(models: list[ModelResults]) -> str:
    """The pruning section, only when a model folder holds the prune experiment's tables."""
    figures = pruning_figures(models)
    if not figures:
        return ""
    note = _note(
        "Held-out windows; the planner measures every joint deletion on the selection windows "
        "(docs/pruning.md). Layers are 0-based in the original numbering."
    )
    return _section("Pruning plan", note + _figures_html(figures))


def _manifests_html(models: list[ModelResults]) -> str:
    parts = []
    for model in models:
        path = model.folder / "manifest.json"
        source = path if path.is_file() else model.folder / IDENTITY_FILE
        label = "manifest.json" if path.is_file() else f"no manifest.json; {IDENTITY_FILE}"
        text = json.dumps(read_json(source), indent=2)
        parts.append(f"<h3>{html.escape(model.name)} ({html.escape(label)})</h3><pre>{html.escape(text)}</pre>")
    return "\n".join(parts)

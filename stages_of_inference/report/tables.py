"""The report's tables: accuracy retained per model and intervention, and any table as HTML."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import pandas as pd

from stages_of_inference.report.results import ModelResults
from stages_of_inference.stages import PAPER_RETENTION

RETENTION_METRICS = ("top1_agreement", "relative_accuracy")
"""The sweep columns summarised in the retention table."""


def retention_table(models: list[ModelResults]) -> pd.DataFrame:
    """Min / mean / max over layers of top-1 agreement and relative accuracy, per model and intervention.

    Models without a robustness table are left out; an empty table means no model has one.
    """
    rows = []
    for model in models:
        table = model.get("robustness")
        if table is None:
            continue
        for kind, part in table.groupby("intervention", sort=False):
            row: dict[str, object] = {"model": model.name, "intervention": kind, "layers": len(part)}
            for metric in RETENTION_METRICS:
                for stat in ("min", "mean", "max"):
                    row[f"{metric} {stat}"] = float(getattr(part[metric], stat)())
            rows.append(row)
    return pd.DataFrame(rows)


def outside_paper(column: str, value: object) -> bool:
    """Whether a retention-table cell is a mean outside the paper's retained range."""
    return (
        column.endswith("mean") and isinstance(value, float) and not PAPER_RETENTION[0] <= value <= PAPER_RETENTION[1]
    )


def html_table(
    table: pd.DataFrame, *, percent: Sequence[str] = (), flag: Callable[[str, object], bool] | None = None
) -> str:
    """A DataFrame as an escaped HTML table; ``percent`` columns shown as percentages, ``flag`` highlights cells.

    Example:
        >>> html_table(pd.DataFrame({"model": ["<m>"], "kept": [0.5]}), percent=["kept"])
        '<table><thead><tr><th>model</th><th>kept</th></tr></thead><tbody><tr><td class="text">&lt;m&gt;</td><td>50.0%</td></tr></tbody></table>'
    """
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


def _cell(value: object, *, highlight: bool = False) -> str:
    css = ' class="outside"' if highlight else ""
    if isinstance(value, float):
        return f"<td{css}>{'' if pd.isna(value) else f'{value:.3g}'}</td>"
    if value is None or value is pd.NA:
        return "<td></td>"
    text_class = "" if isinstance(value, int) else ' class="text"'
    return f"<td{text_class or css}>{html.escape(str(value))}</td>"

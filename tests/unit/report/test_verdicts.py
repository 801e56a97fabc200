"""The report opens with the verdicts, links each to its figure, and writes them to verdicts.json."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from stages_of_inference.report import VERDICTS_FILE, build_report, claim_verdicts
from stages_of_inference.report.results import find_models
from stages_of_inference.report.verdicts import model_evidence
from stages_of_inference.runs.atomic import read_json, write_parquet
from tests.unit.report.conftest import attention, robustness, write_results
from tests.unit.verdicts.synthetic import shard_rows

N_LAYERS = 10
DELETION_KL = [3.0, 2.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 4.0]


def _results_with_shards(tmp_path: Path, n_sequences: int = 40, recorded: int | None = None) -> Path:
    """One model folder whose robustness table records ``recorded`` sequences and whose shards hold ``n_sequences``."""
    table = robustness(N_LAYERS).assign(n_sequences=recorded if recorded is not None else n_sequences)
    results = write_results(tmp_path / "results", "tiny", {"robustness": table, "attention": attention(N_LAYERS)})
    rows = shard_rows(DELETION_KL, [0.2] * (N_LAYERS - 1), n_sequences=n_sequences)
    write_parquet(rows, results / "tiny" / "robustness_shards" / "batch-00000.parquet")
    return results


def test_the_report_opens_with_the_verdicts_linked_to_their_figures(tmp_path: Path) -> None:
    results = _results_with_shards(tmp_path)
    page = build_report(results).read_text()
    assert page.index("The paper&#x27;s claims") < page.index("Figures across depth")
    assert 'href="#figure-robustness"' in page and 'id="figure-robustness"' in page
    assert 'href="#figure-attention"' in page and 'id="figure-attention"' in page


def test_build_report_writes_the_verdicts_at_the_root_and_in_each_model_folder(tmp_path: Path) -> None:
    results = _results_with_shards(tmp_path)
    build_report(results)
    root, own = read_json(results / VERDICTS_FILE), read_json(results / "tiny" / VERDICTS_FILE)
    assert root["alpha"] == 0.05
    assert [v["claim"] for v in own["verdicts"]] == [v["claim"] for v in root["verdicts"] if v["model"] == "tiny"]
    by_claim = {v["claim"]: v for v in own["verdicts"]}
    fragile = by_claim["the first and last layers are more fragile than the middle"]
    assert fragile["verdict"] == "holds" and fragile["n"] == 40 and fragile["figure"] == "robustness"
    assert by_claim["logit-lens KL to final falls late (phase transition)"]["effect"] is None  # no lens table


def test_shards_of_another_run_are_not_tested(tmp_path: Path) -> None:
    results = _results_with_shards(tmp_path, n_sequences=40, recorded=12)
    evidence = model_evidence(find_models(results)[0])
    assert evidence.per_sequence is None and "do not match" in evidence.per_sequence_missing
    verdicts = pd.DataFrame([asdict(v) for v in claim_verdicts(results)])
    robustness_claims = verdicts[(verdicts.figure == "robustness") & (verdicts.model == "tiny")]
    assert set(robustness_claims.verdict) == {"inconclusive"}
    assert robustness_claims.note.str.contains("do not match").all()

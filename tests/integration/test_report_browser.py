"""Open the HTML report in headless Chromium: every figure renders, no script error, a screenshot.

The results folder is made in the test from real SmolLM2 measurements at a tiny budget
(2 windows of 32 tokens, a handful of interventions), written in the layout the
experiments use. Needs Debian's ``chromium`` at /usr/bin/chromium (``apt-get install -y
chromium``, which ``make browser`` does): without it the test fails in CI (``CI`` set,
where ``make test`` installs it first) and skips elsewhere, saying so.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from stages_of_inference.report import build_report
from stages_of_inference.runs.atomic import write_json, write_parquet

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",
]
MODEL = "smollm2-135m"


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder holding one model's robustness, attention, logit-lens and norm tables."""
    import torch

    import stages_of_inference as soi
    from stages_of_inference.analyses.attention import previous_token_attention
    from stages_of_inference.analyses.logit_lens import logit_lens
    from stages_of_inference.analyses.norms import component_norms

    torch.set_num_threads(1)
    model = soi.load_model(MODEL)
    tokens = soi.load_corpus("python-docs", model, n_tokens=64, seq_len=32, seed=0)
    last = model.cfg.n_layers - 1
    interventions = [soi.Intervention("delete", layer) for layer in (0, 1, 2, 10, 15, 20, last - 1, last)]
    interventions += [soi.Intervention("swap", layer) for layer in (0, 15, last - 1)]
    folder = tmp_path_factory.mktemp("results") / MODEL
    tables = {
        "robustness": soi.robustness_sweep(model, tokens, interventions, n_bootstrap=50, progress=False),
        "attention": previous_token_attention(model, tokens),
        "logit_lens": logit_lens(model, tokens),
        "norms": component_norms(model, tokens),
    }
    for name, table in tables.items():
        write_parquet(table, folder / f"{name}.parquet")
    write_json({"model": MODEL, "tokens": int(tokens.numel()), "seq_len": 32, "seed": 0}, folder / "run.json")
    write_json({"toolkit_version": soi.__version__, "config": {"model": MODEL}}, folder / "manifest.json")
    return folder.parent


def chromium(*arguments: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


@pytest.fixture(scope="module")
def browser() -> Path:
    """Chromium, checked before the (module-scoped) results are measured: a failure in CI, a skip elsewhere."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is absent: `make browser` installs it (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def test_report_renders_every_figure_without_script_errors(browser: Path, results_dir: Path, tmp_path: Path) -> None:
    report = build_report(results_dir)
    source = report.read_text(encoding="utf-8")
    n_figures = source.count('<div class="figure">')
    assert n_figures == 4  # robustness, attention, logit lens, norms
    assert source.count("<script>") == 2 + n_figures  # error recorder, plotly.js once, one per figure
    assert MODEL in source and "Top-1 accuracy retained" in source and "Manifests" in source

    dom = chromium("--dump-dom", report.as_uri(), profile=tmp_path / "profile").stdout
    assert dom.count('class="plot-container') == n_figures
    assert dom.count('class="main-svg"') >= n_figures
    errors = re.search(r'<div id="js-errors">(.*?)</div>', dom, re.S)
    assert errors is not None and errors.group(1).strip() == "", errors and errors.group(1)

    screenshot = tmp_path / "report.png"
    chromium(f"--screenshot={screenshot}", "--window-size=1400,3000", report.as_uri(), profile=tmp_path / "profile")
    assert screenshot.exists() and screenshot.stat().st_size > 10_000

"""Execute docs/tutorial.ipynb top to bottom in a real Jupyter kernel (SmolLM2, under a minute).

Never skipped: without the test extra or a ``python3`` kernel the test fails, saying
that ``make install`` installs both (in CI, ``make test`` runs it first).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.integration

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "tutorial.ipynb"
TIMEOUT_SECONDS = 300
"""Per cell; the whole notebook takes well under a minute on a loaded 2-core machine."""


def _required(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        pytest.fail(f"{module} is not installed: `make install` installs the test extra (pip install -e '.[test]')")


def test_tutorial_notebook_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbclient, nbformat = _required("nbclient"), _required("nbformat")
    kernelspec = _required("jupyter_client.kernelspec")
    if "python3" not in kernelspec.KernelSpecManager().find_kernel_specs():
        pytest.fail("no python3 Jupyter kernel: `make install` installs one (python -m ipykernel install --sys-prefix)")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=TIMEOUT_SECONDS, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "delete layer  0: KL" in text and "cosine between the residual streams" in text
    figures = [o for o in outputs if o.output_type == "display_data" and "text/html" in o.get("data", {})]
    assert len(figures) >= 2

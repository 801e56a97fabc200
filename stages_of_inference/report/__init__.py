"""The self-contained HTML report of a results folder (``results/report.html``).

For each model folder of a results directory (a subfolder holding ``run.json``) the
report opens with the verdict table — each claim of the paper tested on each model and
across models (:mod:`stages_of_inference.verdicts`), linked to its figure — then overlays
the paper's figures across models on relative depth, with each
model's estimated stages shaded (:mod:`stages_of_inference.stages`); tabulates the
top-1 accuracy retained under deletion and swap against the paper's 72-95 %; lists
the stage table and the findings where a model departs from the paper; shows the
intervention families beyond the paper a folder holds (``robustness_blocks``,
``robustness_components``, ``robustness_swaps-all``; no section without them); and
prints each model's manifest. plotly.js is inlined once, so the page works offline.

Only expected, user-caused conditions become a note on the page: a table absent from
a model's folder, or evidence the toolkit rejects with a
:class:`~stages_of_inference.errors.StagesError` (e.g. too few layers for a stage
estimate). Any other exception is a bug and propagates.

Modules: ``results`` reads the folders, ``estimates`` runs the stage estimate,
``figures`` says which figures the report shows, ``tables`` builds its tables,
``verdicts`` tests the paper's claims on the folder (``build_report`` also writes them
to ``verdicts.json``) and
``page`` assembles and writes the page.

Example:
    >>> from stages_of_inference.report import build_report
    >>> build_report("results")  # doctest: +SKIP
    PosixPath('results/report.html')
"""

from stages_of_inference.report.page import REPORT_FILE, build_report, render_report
from stages_of_inference.report.verdicts import VERDICTS_FILE, claim_verdicts, write_verdicts

__all__ = ["REPORT_FILE", "VERDICTS_FILE", "build_report", "claim_verdicts", "render_report", "write_verdicts"]

"""Bind a results folder to one run, so that resumed work is never mixed with another run's.

A run's identity is everything that determines its numbers: model and weight hash,
weight processing, corpus, token budget, window length, seed, a hash of the tokens
themselves and the toolkit version. :func:`claim_folder` writes it as ``run.json``
the first time; later runs with the same identity resume in the folder, and runs
with a different one are refused with the differences spelled out, unless
``overwrite`` clears the folder first.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import torch

from stages_of_inference.errors import ResultsError
from stages_of_inference.runs.atomic import read_json, write_json

IDENTITY_FILE = "run.json"


def tokens_sha256(tokens: torch.Tensor) -> str:
    """A hash of the exact token windows (shape and values)."""
    digest = hashlib.sha256(str(tuple(tokens.shape)).encode())
    digest.update(tokens.to(torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()


def claim_folder(folder: Path, identity: dict[str, Any], *, overwrite: bool = False) -> bool:
    """Make ``folder`` the home of the run described by ``identity``.

    Returns:
        ``True`` when the folder already held this run (work will resume), else
        ``False`` (a fresh start).

    Raises:
        ResultsError: The folder holds a different run (and ``overwrite`` is off), or
            cannot be written.
    """
    folder = Path(folder)
    marker = folder / IDENTITY_FILE
    if overwrite and folder.exists():
        shutil.rmtree(folder)
    if marker.exists():
        existing = read_json(marker)
        differences = [
            f"{key}: {existing.get(key)!r} there, {identity.get(key)!r} now"
            for key in sorted(set(existing) | set(identity))
            if existing.get(key) != identity.get(key)
        ]
        if differences:
            raise ResultsError(
                f"{folder} holds results of a different run ({'; '.join(differences)}); "
                "choose another --out folder or pass --overwrite to start afresh"
            )
        return True
    write_json(identity, marker)
    return False

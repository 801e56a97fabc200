"""Write results atomically: a file is either complete or absent, never half-written.

Every writer puts the bytes in a temporary file beside the target, flushes and
fsyncs it, then renames it over the target (atomic on POSIX). A full disk or a killed
process therefore leaves no truncated table that a later run could mistake for a
finished one. Only parquet, JSON and HTML are written: never pickle.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stages_of_inference.errors import ResultsError


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise ResultsError(f"cannot write to {path.parent}: {error.strerror}; choose a writable --out folder") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise ResultsError(
            f"writing {path} failed ({error.strerror or error}); nothing was left half-written — "
            "free disk space or choose another --out folder, then run again"
        ) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_parquet(table: pd.DataFrame, path: Path, *, metadata: dict[str, str] | None = None) -> Path:
    """Write a DataFrame as parquet, atomically, with optional key-value ``metadata`` in the file."""
    if metadata is None:
        return _atomic_write(path, lambda stream: table.to_parquet(stream, index=False))
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    extra = {key.encode(): value.encode() for key, value in metadata.items()}
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), **extra})
    return _atomic_write(path, lambda stream: pq.write_table(arrow, stream))


def write_json(data: Any, path: Path) -> Path:
    """Write strict JSON (indented, keys in insertion order), atomically.

    NaN and infinite floats (an undefined ratio, such as relative accuracy when the
    baseline is never right) are written as ``null``, which every JSON reader accepts.
    """
    text = json.dumps(_finite_or_null(data), indent=2, allow_nan=False, default=str) + "\n"
    return _atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


def _finite_or_null(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite_or_null(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite_or_null(value) for value in data]
    return data


def write_text(text: str, path: Path) -> Path:
    """Write UTF-8 text (HTML reports, figures), atomically."""
    return _atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


def read_json(path: Path) -> Any:
    """Read a JSON file this toolkit wrote; a damaged one raises ResultsError."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ResultsError(f"cannot read {path}: {error}; delete it or pass --overwrite") from None


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """A folder that appears at ``target`` complete, or not at all.

    Yields a temporary folder beside ``target``; fill it inside the ``with`` block. On a
    clean exit it is renamed to ``target`` (atomic on POSIX); on any error it is removed.
    An ``OSError`` is swallowed only when ``target`` exists by then, because a concurrent
    writer of the same content finished first (caches keyed by content use this).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> with atomic_directory(root / "copy") as partial:
        ...     _ = (partial / "weights.txt").write_text("1.0")
        >>> sorted(p.name for p in root.iterdir()), (root / "copy" / "weights.txt").read_text()
        (['copy'], '1.0')
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
    try:
        yield partial
        os.replace(partial, target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)

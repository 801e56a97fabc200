"""The toolkit's cache folder and what it keeps: converted GGUF weights, processed weights, hashes.

Everything cached is keyed by the sha256 of the weights file it came from, so a copy
can never stand in for other weights. A damaged copy is discarded and rebuilt. A file
checked against its pinned sha256 gets a record (its size and modification time) in
``verified/``, so that it is hashed again only when it changes (:func:`verify_sha256`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

from stages_of_inference.errors import ModelLoadError

CACHE_ENV_VAR = "STAGES_OF_INFERENCE_CACHE"


def cache_dir() -> Path:
    """The folder where converted weights are cached.

    ``$STAGES_OF_INFERENCE_CACHE`` when set, else the platform's user cache folder
    (``~/.cache/stages-of-inference`` on Linux).

    Example:
        >>> import os
        >>> os.environ[CACHE_ENV_VAR] = "/tmp/soi-cache"
        >>> cache_dir()
        PosixPath('/tmp/soi-cache')
        >>> del os.environ[CACHE_ENV_VAR]
    """
    override = os.environ.get(CACHE_ENV_VAR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("stages-of-inference"))


def converted_dir(stem: str, sha256: str) -> Path:
    """Where the float32 copy of the GGUF file ``stem`` with this hash is cached."""
    return cache_dir() / "converted" / f"{stem}-{sha256[:16]}"


def discard_damaged(cached: Path, error: ModelLoadError) -> None:
    """Warn that a cached copy is damaged and delete it, so that it is rebuilt."""
    warnings.warn(f"rebuilding the damaged cached copy {cached}: {error}", stacklevel=3)
    shutil.rmtree(cached, ignore_errors=True)


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 4 MiB blocks.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as handle:
        ...     file_sha256(Path(handle.name))[:12]
        'e3b0c44298fc'
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, sha256: str, *, fix: str) -> None:
    """Check that a weights file has its pinned sha256, hashing it only if it changed since the last check.

    A file that matched is recorded in ``verified/`` under its name, with its path,
    size and modification time; while those are unchanged, later checks read the record
    instead of hashing the file again (1 GB takes seconds on a busy machine).

    Args:
        path: The file.
        sha256: Its pinned hash.
        fix: What the user should do when it does not match (ends the error message).

    Raises:
        ModelLoadError: The file's hash is not the pinned one.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as handle:
        ...     verify_sha256(Path(handle.name), "0" * 64, fix="reinstall it")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        stages_of_inference.errors.ModelLoadError: ... has sha256 e3b0c44298fc1c14..., not the pinned 0000000000000000...; reinstall it
    """
    status = path.stat()
    seen = {"path": str(path), "size": status.st_size, "mtime_ns": status.st_mtime_ns, "sha256": sha256}
    record = cache_dir() / "verified" / f"{path.name}.json"
    try:
        if json.loads(record.read_text()) == seen:
            return
    except (OSError, ValueError):  # no record yet, or a damaged one: hash the file
        pass
    actual = file_sha256(path)
    if actual != sha256:
        raise ModelLoadError(f"{path} has sha256 {actual[:16]}..., not the pinned {sha256[:16]}...; {fix}")
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(seen))
    except OSError:  # an unwritable cache costs a hash on the next load, not a wrong result
        pass

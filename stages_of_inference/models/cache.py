"""The toolkit's cache folder and what it keeps: converted GGUF weights, processed weights, hashes.

Everything cached is keyed by the sha256 of the weights file it came from, so a copy
can never stand in for other weights. A damaged copy is discarded and rebuilt.
"""

from __future__ import annotations

import hashlib
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

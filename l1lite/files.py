"""Atomic, no-clobber output files shared by export, eval and training.

Owns :func:`atomic_path` and :class:`OutputExistsError`; imports no l1lite module (any stage may import it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputExistsError(FileExistsError):
    """An output exists and ``force`` was not given."""


@contextmanager
def atomic_path(final: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``final`` (file or folder); rename it into place on success.

    On any exception, or a kill, nothing appears under the final name. An existing output is
    an :class:`OutputExistsError` unless ``force`` is set.
    """
    final = Path(final)
    if final.exists() and not force:
        raise OutputExistsError(f"{final} exists (use --force to overwrite)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        if final.exists():
            _remove(final)
        os.replace(tmp, final)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()

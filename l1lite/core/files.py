"""Atomic, no-clobber output files shared by export, eval and training.

Owns :func:`atomic_path`, :class:`OutputExistsError` and :class:`NoRoomError`; imports no l1lite module (any
stage may import it).
"""

from __future__ import annotations

import errno
import glob
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NO_ROOM = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # disk full, file size limit, quota


class OutputExistsError(FileExistsError):
    """An output exists and ``force`` was not given."""


class NoRoomError(OSError):
    """Writing an output found no room (disk full, file size limit, quota); its ``filename`` is the final name."""


def _errno(error: Exception, folder: Path) -> int | None:
    """The OS error number of a write into ``folder`` that raised ``error``.

    An OSError's own, the ``os error N`` a Rust library (safetensors) quotes, or for numpy's short write
    (``N requested and M written``, no number) ENOSPC when ``folder``'s disk is full, else EFBIG.
    """
    if isinstance(error, OSError) and error.errno is None and re.search(r"requested and \d+ written", str(error)):
        return errno.ENOSPC if os.statvfs(folder).f_bavail == 0 else errno.EFBIG
    if isinstance(error, OSError):
        return error.errno
    found = re.search(r"os error (\d+)", str(error))
    return int(found.group(1)) if found else None


@contextmanager
def atomic_path(final: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``final`` (file or folder); rename it into place on success.

    On any exception, or a kill, nothing appears under the final name; a write that found no room is raised
    as a :class:`NoRoomError` naming ``final``. An existing output is an :class:`OutputExistsError` unless
    ``force`` is set. Temps a killed run left beside ``final``
    (``.NAME.tmp-PID`` of a process that no longer runs) are removed first.

    Args:
        final (`str` or `Path`):
            The output's final name.
        force (`bool`, *optional*, defaults to `False`):
            Replace an existing output.
    """
    final = Path(final)
    if final.exists() and not force:
        raise OutputExistsError(f"{final} exists (use --force to overwrite)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    for stale in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
        if stale == tmp or not _running(stale.name.rsplit("-", 1)[1]):
            _remove(stale)
    try:
        yield tmp
        if final.exists():
            _remove(final)
        os.replace(tmp, final)
    except Exception as e:
        if (code := _errno(e, final.parent)) in NO_ROOM:
            raise NoRoomError(code, os.strerror(code), str(final)) from e
        raise
    finally:
        _remove(tmp)


def _running(pid: str) -> bool:
    """Whether process ``pid`` (a temp name's suffix) still runs; a reused PID counts as running."""
    if not pid.isdigit():
        return True  # not a temp of atomic_path: leave it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()

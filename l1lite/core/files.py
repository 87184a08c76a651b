"""Atomic, no-clobber output files shared by export, eval and training.

Owns :func:`atomic_path`, :func:`check_output`, :class:`OutputExistsError`, :class:`OutputPathError` and
:class:`NoRoomError`; imports no l1lite module (any stage may import it).

``force`` replaces only what the command itself writes: a file with a file, and a folder with a folder whose every
entry is a name the command writes (``holds``); never a folder with a file, a file with a folder, nor a folder that
holds anything else.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NO_ROOM = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # disk full, file size limit, quota
HF_MODEL_FILES = (  # what save_pretrained of a causal LM and its tokenizer writes: a folder --force may replace
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)
ANYTHING = ("*", "*/")  # a cache folder of l1lite's own: whatever is in it may be replaced


class OutputExistsError(FileExistsError):
    """An output exists and ``force`` was not given."""


class OutputPathError(ValueError):
    """An output path that cannot be an output: a file where a folder goes, a folder where a file goes, a folder
    holding what the command did not write, or a place that cannot be written."""


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


def check_output(path: str | Path, what: str, folder: bool) -> Path:
    """``path`` as an output: an :class:`OutputPathError` naming it (with ``what``, e.g. ``--out``) unless it can be.

    The path must not be empty, must be a folder (``folder``) or a file where it exists, and its nearest existing
    ancestor must be a folder this process may write in. Nothing is created.
    """
    if not str(path).strip():
        raise OutputPathError(f"{what} is empty: give a path")
    p = Path(path).expanduser()
    if p.exists() and p.is_dir() != folder:
        kind = "a folder" if p.is_dir() else "a file"
        raise OutputPathError(f"{what} {p} is {kind}; it must be {'a folder' if folder else 'a file'}")
    parent = p if folder and p.exists() else p.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"{what} {p}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {p}: {parent} is not writable")
    return p


def _check_replace(final: Path, holds: tuple[str, ...] | None) -> None:
    """Raise :class:`OutputPathError` unless ``final`` is an output of the kind ``holds`` says (see the module)."""
    if holds is None:
        if final.is_dir() and not final.is_symlink():
            raise OutputPathError(f"{final} is a folder; --force replaces a file l1lite wrote, never a folder")
        return
    if not final.is_dir():
        raise OutputPathError(f"{final} is a file; --force replaces a folder l1lite wrote, never a file")
    for entry in sorted(final.iterdir()):
        name = entry.name + "/" if entry.is_dir() and not entry.is_symlink() else entry.name
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in holds):
            raise OutputPathError(
                f"{final} holds {name}, which l1lite does not write there; --force replaces only a folder of its "
                "own (choose another path, or remove it yourself)"
            )


@contextmanager
def atomic_path(final: str | Path, force: bool = False, holds: tuple[str, ...] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final`` (file or folder); rename it into place on success.

    On any exception, or a kill, nothing appears under the final name; a write that found no room is raised
    as a :class:`NoRoomError` naming ``final``. An existing output is an :class:`OutputExistsError` unless
    ``force`` is set, and even then only one of the same kind that the command writes (an :class:`OutputPathError`
    otherwise). Temps a killed run left beside ``final`` (``.NAME.tmp-PID`` of a process that no longer runs) are
    removed first.

    Args:
        final: the output's final name.
        force: replace an existing output.
        holds: for a folder output: glob patterns of the names it holds (a pattern ending in ``/`` names a sub-folder).
            `None`: the output is a file.
    """
    final = Path(final)
    if final.exists() and not force:
        raise OutputExistsError(f"{final} exists (use --force to overwrite)")
    if final.exists():
        _check_replace(final, holds)
    check_output(final, "output", folder=holds is not None)
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

"""The files of an eval folder: ``results.jsonl`` rows keyed by sample, ``summary.json``, ``config.json`` and
``problems.json`` (a hash of each problem, so that a resume knows the dataset is the same).

Owns their names, the sample key, the plan of keys of a run and how rows are read back (a half-written
last line is ignored or repaired). Read by ``l1lite.eval.engine`` (which writes them) and ``l1lite.eval.report``;
imports neither.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from l1lite.core.config import ConfigError

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
CONFIG = "config.json"
PROBLEMS = "problems.json"

Key = tuple[str, str, int | None, str, int]  # (problem id, strategy, budget, mode, sample index)
Run = tuple[str, dict[str, Any], list[dict[str, Any]]]  # (label, summary.json, its results.jsonl rows)


def plan(ids: list[str], budgets: list[int], strategies: list[str], mode: str, samples: int) -> list[Key]:
    """Every sample key of a run, in generation order (``none`` once, with budget None).

    Args:
        ids (`list[str]`):
            Problem ids, in dataset order.
        budgets (`list[int]`):
            Thinking budgets (generated in ascending order).
        strategies (`list[str]`):
            ``prompt``, ``forcing`` and/or ``none``, in this run's order.
        mode (`str`):
            ``"exact"`` or ``"max"``.
        samples (`int`):
            Samples per problem.
    """
    keys = []
    for strategy in strategies:
        for budget in [None] if strategy == "none" else sorted(budgets):
            keys += [(pid, strategy, budget, mode, k) for pid in ids for k in range(samples)]
    return keys


def row_key(row: dict[str, Any]) -> Key:
    """The key of one results.jsonl row."""
    return (row["id"], row["strategy"], row["budget"], row["mode"], row["sample"])


def read_results(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """Rows of results.jsonl; a partially written last line is ignored (and cut off when ``repair``)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1  # bytes after the last newline: a line whose write was interrupted
    if repair and end < len(data):
        with path.open("r+b") as f:
            f.truncate(end)
    rows = []
    for n, line in enumerate(data[:end].splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise ConfigError(f"{path}:{n}: not a JSON line; fix or delete the file to start over") from None
    return rows


def select(rows: list[dict[str, Any]], keys: list[Key]) -> list[dict[str, Any]]:
    """The rows of ``keys`` (the last row wins if a key repeats), in plan order."""
    by_key = {row_key(r): r for r in rows}
    return [by_key[k] for k in keys if k in by_key]


def load_run(folder: str | Path) -> Run:
    """(folder name, summary.json, selected results.jsonl rows) of a finished eval folder."""
    folder = Path(folder)
    if not (folder / SUMMARY).is_file():
        raise ConfigError(f"{folder}: no {SUMMARY} (not an eval output folder, or the eval has not finished)")
    summary = json.loads((folder / SUMMARY).read_text())
    info = summary["run"]
    keys = plan(info["ids"], info["budgets"], info["strategies"], info["mode"], info["samples"])
    return folder.resolve().name, summary, select(read_results(folder / RESULTS), keys)

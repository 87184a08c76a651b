"""The before/after harness of ``l1lite bench``: seeds, evals, means over seeds, the goal, the output files.

A benchmark evaluates a model before and after training at budgets 4x apart, in exact mode (length error, dial
spread) and max mode (share over budget), per seed, and scores the means over seeds against its settings' goals.
What it trains and how it runs an eval are its own (:mod:`~l1lite.bench.dial`, :mod:`~l1lite.bench.real`).
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from l1lite.core.config import ConfigError
from l1lite.core.files import atomic_path

SUMMARY = "summary.json"
REPORT = "report.md"
RESULT = "result.json"  # a finished part (a seed, a base eval); a rerun into the same folder keeps it
FIGURES = ("accuracy", "mean_tokens", "rel_error", "over_budget_max")  # averaged over seeds, with their range


class Settings(Protocol):
    """What the harness reads from a benchmark's settings dataclass."""

    budgets: list[int]
    seeds: list[int]
    spread_goal: float  # dial spread to reach: mean length at the largest budget / at the smallest
    error_goal: float  # mean relative length error to stay under at every budget


@dataclass(frozen=True)
class Benchmark:
    """One ``l1lite bench NAME`` command: its settings dataclass (defaults: the full run), the test suite's
    reduced settings, ``run(out, settings, force, **options) -> summary`` and the summary's markdown table."""

    settings: Callable[[], Settings]
    quick: Settings
    run: Callable[..., dict[str, Any]]
    table: Callable[[dict[str, Any]], str]


def open_out(out: str | Path, s: Settings, force: bool) -> Path:
    """Check ``s`` (budgets 4x apart, a seed) and ready ``out``: a summary of the same seeds there is refused,
    ``force`` removes ``out``."""
    if max(s.budgets) < 4 * min(s.budgets):
        raise ConfigError(f"budgets {s.budgets} must span 4x")
    if not s.seeds:
        raise ConfigError("a benchmark needs at least one seed")
    out = Path(out)
    if (
        not force
        and (out / SUMMARY).exists()
        and json.loads((out / SUMMARY).read_text())["settings"]["seeds"] == s.seeds
    ):
        raise ConfigError(f"{out / SUMMARY} exists for seeds {s.seeds}; use another --out or --force")
    if force and out.exists():
        shutil.rmtree(out)
    return out


def kept(path: Path, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The JSON result an earlier run left at ``path``, else ``compute()``, written there."""
    if path.is_file():
        return json.loads(path.read_text())
    result = compute()
    with atomic_path(path, force=True) as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n")
    return result


def run_seeds(out: Path, s: Settings, bench_seed: Callable[[Path, int], dict[str, Any]]) -> dict[str, Any]:
    """Each seed's ``bench_seed(out / "seed-N", N)``, :func:`kept`: runs of single seeds into one ``out`` can go
    in parallel, and a run of all seeds then only reads theirs."""
    return {str(n): kept(out / f"seed-{n}" / RESULT, lambda n=n: bench_seed(out / f"seed-{n}", n)) for n in s.seeds}


def measure(evaluate: Callable[[str], dict[str, Any]], max_mode: bool = True) -> dict[str, Any]:
    """One model's exact- and max-mode evals: per-budget figures, the exact-mode dial spread, the wall time.

    Args:
        evaluate: runs the model's eval with a mode's budget sentence (``exact``, ``max``), returns its summary.
        max_mode: also evaluate in max mode; without it the max-mode figures are NaN.

    Returns:
        ``rows`` (budget -> figures), ``dial_spread`` (None where undefined) and ``eval_seconds``.
    """
    start = time.time()
    exact = evaluate("exact")
    maxed = {r["budget"]: r for r in evaluate("max")["rows"] if r["strategy"] == "prompt"} if max_mode else {}
    nan = dict.fromkeys(("over_budget", "accuracy", "mean_tokens"), float("nan"))
    rows = {
        r["budget"]: {
            "accuracy": r["accuracy"],
            "mean_tokens": r["mean_tokens"],
            "rel_error": r["rel_error"],
            "over_budget_max": maxed.get(r["budget"], nan)["over_budget"],
            "accuracy_max": maxed.get(r["budget"], nan)["accuracy"],
            "mean_tokens_max": maxed.get(r["budget"], nan)["mean_tokens"],
        }
        for r in exact["rows"]
        if r["strategy"] == "prompt"
    }
    spread = exact["dial_spread"].get("prompt", {}).get("total")
    return {"rows": rows, "dial_spread": spread, "eval_seconds": round(time.time() - start, 1)}


def figure_means(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each of :data:`FIGURES` of one budget over seeds (``rows``: one per seed): mean and range (max - min)."""
    out = {}
    for f in FIGURES:
        values = [r[f] for r in rows]
        out[f], out[f"{f}_range"] = statistics.fmean(values), max(values) - min(values)
    return out


def spread_means(runs: list[dict[str, Any]]) -> dict[str, float]:
    """One model's dial spread over seeds (``runs``: its :func:`measure` results; None counts as 0): mean and range."""
    spreads = [r["dial_spread"] or 0.0 for r in runs]
    return {"dial_spread": statistics.fmean(spreads), "dial_spread_range": max(spreads) - min(spreads)}


def _rows(model: dict[str, Any]) -> list[dict[str, Any]]:
    """A model's per-budget rows: a list (dial) or a dict keyed by budget (real)."""
    rows = model["rows"]
    return list(rows.values()) if isinstance(rows, dict) else rows


def goal(after: dict[str, Any], before: dict[str, Any], s: Settings, before_label: str) -> dict[str, Any]:
    """The goal of ``s`` on means over seeds: length error and spread of ``after``, its accuracy against ``before``.

    Args:
        after: the trained model's means (``rows``, ``dial_spread``).
        before: the model before training, the same way.
        s: the settings (``error_goal``, ``spread_goal``).
        before_label: names the before model's accuracy (``LABEL_accuracy``).
    """
    worst = max(r["rel_error"] for r in _rows(after))
    accuracy = statistics.fmean(r["accuracy"] for r in _rows(after))
    before_accuracy = statistics.fmean(r["accuracy"] for r in _rows(before))
    return {
        "max_rel_error": worst,
        "rel_error_ok": worst <= s.error_goal,
        "dial_spread": after["dial_spread"],
        "spread_ok": after["dial_spread"] >= s.spread_goal,
        "accuracy": accuracy,
        f"{before_label}_accuracy": before_accuracy,
        "accuracy_ok": accuracy >= before_accuracy,
    }


def finish(
    out: Path, s: Settings, start: float, seeds: dict[str, Any], markdown: Callable[[dict], str], **figures: Any
) -> dict[str, Any]:
    """Write ``out/summary.json`` (settings, this invocation's time since ``start``, the ``seeds``' results,
    ``figures``: the means over seeds, the goal) and its ``markdown`` report; return the summary."""
    summary = {"settings": asdict(s), "total_seconds": round(time.time() - start, 1), "seeds": seeds, **figures}
    with atomic_path(out / SUMMARY, force=True) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    with atomic_path(out / REPORT, force=True) as tmp:
        tmp.write_text(markdown(summary))
    return summary

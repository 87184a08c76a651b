"""What ``l1lite train`` costs per GRPO step over a bare TRL ``GRPOTrainer`` script doing the same work.

Both arms train the offline tiny model (``l1lite:tiny``, plain fp32 + LoRA r8 on every projection) on the same
problems of ``l1lite:math-small`` with budget prompts (targets U(16, 64)) and the same LCPO-Exact reward callable,
for the same steps, batch, rollouts and completion length, each in its own process. The bare arm builds its model,
LoRA, dataset and GRPOConfig by hand; the l1lite arm is ``l1lite.train.run.train`` with a config (its checks,
curriculum, schedule dataset, callbacks and outputs). A random tiny model never emits EOS, so every completion
runs to ``--completion`` tokens in both arms: the same tokens generated and trained on.

Step time is the median of each run's steps after the first (a TrainerCallback times ``on_step_begin`` to
``on_step_end``), both in wall seconds and in the process's CPU seconds (less disturbed by other work on the
machine), and the figure is the median over ``--runs`` runs per arm, run alternately, one torch thread each.

    python benchmarks/train_overhead.py                   # 5 runs per arm, 16 steps of 8 x 128 tokens each
    python benchmarks/train_overhead.py --runs 5 --steps 12
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBLEMS = 32
LORA_R, LORA_ALPHA = 8, 16
TARGETS = (16, 64)
SETTINGS = {  # GRPOConfig fields both arms use
    "per_device_train_batch_size": 8,
    "num_generations": 8,
    "learning_rate": 1e-4,
    "temperature": 0.6,
    "beta": 0.0,
    "seed": 0,
    "report_to": "none",
    "save_strategy": "no",
    "logging_steps": 1,
    "use_cpu": True,
    "shuffle_dataset": False,
    "gradient_checkpointing": False,  # GRPOConfig turns it on by default
}


def step_timer() -> tuple[object, list[tuple[float, float]]]:
    """A TrainerCallback recording each optimizer step's (wall, CPU) seconds, and the list it fills."""
    from transformers import TrainerCallback

    times: list[tuple[float, float]] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, **kwargs):
            times.append((time.perf_counter() - self.start[0], time.process_time() - self.start[1]))

        def on_train_end(self, args, state, control, **kwargs):
            times.append((state.num_input_tokens_seen, 0.0))  # the tokens trained on: the same work in both arms

    return Timer(), times


def run_l1lite(out: Path, steps: int, completion: int) -> list[tuple[float, float]]:
    """``l1lite.train.run.train`` with a config for the shared settings; each step's (wall, CPU) seconds."""
    from l1lite.core.config import TrainConfig, from_dict
    from l1lite.train.run import train

    trainer = {k: v for k, v in SETTINGS.items() if k not in ("report_to", "use_cpu")}
    cfg = from_dict(
        TrainConfig,
        {
            "output_dir": str(out),
            "model": {
                "name": "l1lite:tiny",
                "backend": "plain",
                "load_in_4bit": False,
                "gradient_checkpointing": False,
            },
            "lora": {"r": LORA_R, "alpha": LORA_ALPHA},
            "data": {"dataset": "l1lite:math-small", "limit": PROBLEMS},
            "reward": {"mode": "exact"},
            "curriculum": {"scheduler": "uniform", "lo": TARGETS[0], "hi": TARGETS[1]},
            "trainer": {**trainer, "max_steps": steps, "max_completion_length": completion},
            "logging": {"report_to": ["none"]},
        },
    )
    timer, times = step_timer()
    train(cfg, callbacks=[timer])
    return times


def run_trl(out: Path, steps: int, completion: int) -> list[tuple[float, float]]:
    """A bare TRL script: model, LoRA, dataset and GRPOConfig by hand; each step's (wall, CPU) seconds."""
    import random
    from importlib import resources

    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from l1lite.core.config import RewardConfig
    from l1lite.core.models import resolve_model
    from l1lite.train.rewards import build_reward_funcs

    folder = resolve_model("l1lite:tiny")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(
        model, LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, target_modules=modules, task_type="CAUSAL_LM")
    )
    lines = resources.files("l1lite.assets").joinpath("math_small.jsonl").read_text().splitlines()[:PROBLEMS]
    problems = [json.loads(line) for line in lines]
    rng = random.Random(0)
    rows = []
    for i in range(steps * SETTINGS["per_device_train_batch_size"] // SETTINGS["num_generations"] * 4):
        p = problems[i % len(problems)]
        target = rng.randint(*TARGETS)
        text = (
            f"{p['problem']} Let's think step by step and output the final answer within \\boxed{{}}. "
            f"Think for {target} tokens."
        )
        rows.append(
            {
                "prompt": [{"role": "user", "content": text}],
                "answer": str(p["answer"]),
                "target_tokens": target,
                "budget_mode": "exact",
            }
        )
    args = GRPOConfig(output_dir=str(out), max_steps=steps, max_completion_length=completion, **SETTINGS)
    timer, times = step_timer()
    trainer = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=build_reward_funcs(RewardConfig()),
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        callbacks=[timer],
    )
    trainer.train()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per arm (alternating)")
    parser.add_argument("--steps", type=int, default=16, help="GRPO steps per run")
    parser.add_argument("--completion", type=int, default=128, help="max_completion_length")
    parser.add_argument("--worker", choices=["l1lite", "trl"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        with tempfile.TemporaryDirectory() as tmp:
            run = run_l1lite if args.worker == "l1lite" else run_trl
            times = run(Path(tmp) / "out", args.steps, args.completion)
        print(json.dumps({"steps": times}))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    medians: dict[str, dict[str, list[float]]] = {arm: {"wall": [], "cpu": []} for arm in ("trl", "l1lite")}
    for i in range(args.runs):
        for arm, found in medians.items():
            cmd = [sys.executable, __file__, "--worker", arm, "--steps", str(args.steps)]
            start = time.perf_counter()
            proc = subprocess.run(
                [*cmd, "--completion", str(args.completion)], capture_output=True, text=True, check=True, env=env
            )
            *steps, (tokens, _) = json.loads(proc.stdout.strip().splitlines()[-1])["steps"][1:]
            found.setdefault("tokens", []).append(tokens)
            for k, kind in enumerate(("wall", "cpu")):
                found[kind].append(statistics.median(s[k] for s in steps))
            print(
                f"run {i} {arm:>6}: median step {found['wall'][-1]:.3f} s wall, {found['cpu'][-1]:.3f} s CPU "
                f"over steps 2-{len(steps) + 1}; {tokens} tokens seen; process {time.perf_counter() - start:.1f} s",
                flush=True,
            )
    result = {"runs": args.runs, "steps": args.steps, "completion": args.completion, "per_run": medians}
    for kind in ("wall", "cpu"):
        trl, ours = (statistics.median(medians[arm][kind]) for arm in ("trl", "l1lite"))
        result[kind] = {"trl_step_s": round(trl, 4), "l1lite_step_s": round(ours, 4), "ratio": round(ours / trl, 4)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""Peak memory and generated tokens/s per GRPO step, per training backend.

Builds a random-init Qwen2 of DeepSeek-R1-Distill-Qwen-1.5B's shape (or a scaled-down one with
``--shape small``, the default without CUDA) and runs a few real l1lite GRPO steps per backend, each in
its own process. A random model never emits EOS, so every completion runs to the full length: the
worst case for memory. Goal on a CUDA GPU: peak <= 20 GB at 8 generations x 4096 tokens.

    python benchmarks/train_memory.py                      # CPU: small shape, plain + bnb
    python benchmarks/train_memory.py --shape real --backends unsloth,bnb --completion 4096   # GPU
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

V = 151936  # the real tokenizer size
SHAPES = {
    "real": dict(hidden_size=1536, num_layers=28, num_heads=12, num_kv_heads=2, intermediate_size=8960, vocab_size=V),
    "small": dict(hidden_size=256, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=1024, vocab_size=V),
}


def build_model(folder: Path, shape: str) -> None:
    """Random-init Qwen2 of ``shape`` in bf16 with the offline tokenizer (ids fit; embeddings are full size)."""
    from l1lite.core.tiny import build_tiny_model

    build_tiny_model(folder, **SHAPES[shape], dtype="bfloat16")


def worker(args: argparse.Namespace) -> None:
    """Run GRPO steps with one backend and print one JSON line of measurements."""
    import torch
    from transformers import TrainerCallback

    from l1lite.core.config import TrainConfig, load_config
    from l1lite.train import run as train_mod

    steps: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            steps.append(time.perf_counter() - self.t)

    cuda = torch.cuda.is_available()
    overrides = [
        f"model.name={args.model}",
        f"model.backend={args.backend}",
        f"model.load_in_4bit={str(args.backend != 'plain').lower()}",
        f"output_dir={args.run_dir}",
        "data.dataset=l1lite:math-small",
        "data.limit=16",
        f"curriculum.lo={args.completion}",
        f"curriculum.hi={args.completion}",
        f"trainer.max_steps={args.steps}",
        f"trainer.num_generations={args.generations}",
        f"trainer.per_device_train_batch_size={args.generations}",
        "trainer.gradient_accumulation_steps=1",
        f"trainer.max_completion_length={args.completion}",
        "trainer.save_strategy=no",
        "trainer.optim=" + ("paged_adamw_8bit" if cuda else "adamw_torch"),
        "logging.report_to=[none]",
    ]
    cfg = load_config(TrainConfig, Path(__file__).resolve().parents[1] / "configs" / "l1-exact.yaml", overrides)
    cfg.trainer["disable_tqdm"] = True
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    summary = train_mod.train(cfg, callbacks=[StepTimer()])
    history = json.loads((Path(args.run_dir) / "log_history.json").read_text())
    lengths = [e["completions/mean_length"] for e in history if "completions/mean_length" in e]
    tokens_per_step = args.generations * (sum(lengths) / len(lengths))
    measured = steps[1:] or steps  # the first step includes warm-up
    step_s = sum(measured) / len(measured)
    print(
        json.dumps(
            {
                "backend": summary["backend"],
                "device": torch.cuda.get_device_name() if cuda else "cpu",
                "peak_gpu_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
                "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
                "step_seconds": round(step_s, 2),
                "generated_tokens_per_step": round(tokens_per_step),
                "tokens_per_second": round(tokens_per_step / step_s, 1),
            }
        )
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), default=None, help="default: real on CUDA, small on CPU")
    p.add_argument("--backends", default=None, help="comma list (default: unsloth,bnb,plain on CUDA; plain,bnb on CPU)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--completion", type=int, default=None, help="completion tokens (default 4096 CUDA, 64 CPU)")
    p.add_argument("--out", help="write results JSON here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--backend", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    cuda = torch.cuda.is_available()
    shape = args.shape or ("real" if cuda else "small")
    backends = (args.backends or ("unsloth,bnb,plain" if cuda else "plain,bnb")).split(",")
    completion = args.completion or (4096 if cuda else 64)
    results = {"shape": shape, "config": SHAPES[shape], "generations": args.generations, "completion": completion}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        build_model(model, shape)
        for backend in backends:
            cmd = [sys.executable, __file__, "--worker", "--backend", backend, "--model", str(model)]
            cmd += ["--run-dir", str(Path(tmp) / f"run-{backend}"), "--steps", str(args.steps)]
            cmd += ["--generations", str(args.generations), "--completion", str(completion)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not lines:
                results[backend] = {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
            else:
                results[backend] = json.loads(lines[-1])
            print(backend, json.dumps(results[backend]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""``l1lite eval``: the command over :func:`l1lite.eval.engine.evaluate`, and ``l1lite eval compare``."""

from __future__ import annotations

import argparse
from pathlib import Path

from l1lite.core import config
from l1lite.core.config import EvalConfig, Flags, add_config_arguments
from l1lite.eval.engine import evaluate

# flag -> (EvalConfig key, help[, argparse keywords]); types and defaults come from EvalConfig
FLAGS: Flags = {
    "model": ("model", "GGUF file (llama.cpp) or HF model folder / hub id (transformers)"),
    "adapter": ("adapter", "PEFT LoRA adapter folder (HF models)"),
    "endpoint": (
        "endpoint",
        "OpenAI-compatible server URL (llama.cpp server, Ollama /v1, vLLM); repeat it (or comma-separate URLs) "
        "to spread the samples over several servers of the same model",
        {"action": "append"},
    ),
    "tokenizer": ("tokenizer", "tokenizer used to count tokens (endpoints)"),
    "backend": ("backend", "what runs an HF model folder: auto (transformers), transformers or vllm (in process)"),
    "n_ctx": ("n_ctx", "context size"),
    "dataset": ("data.dataset", "l1lite:math-small, a local file, or a hub id"),
    "preset": ("data.preset", "dataset preset (math500, aime, gsm8k, choice, ...)"),
    "split": ("data.split", "dataset split"),
    "limit": ("data.limit", "only the first N problems"),
    "grader": ("grader", "math | choice | exact | number | package.module:function"),
    "require_think_close": (
        "require_think_close",
        "an answer counts only after </think>; --no-require-think-close grades the whole text",
    ),
    "budgets": ("budgets", "comma-separated thinking budgets"),
    "strategies": ("strategies", "comma-separated subset of prompt,forcing,hardcap,none"),
    "mode": ("mode", "budget mode: exact or max"),
    "samples": ("samples", "samples per problem (paper 16)"),
    "temperature": ("temperature", "sampling temperature"),
    "top_p": ("top_p", "nucleus sampling"),
    "seed": ("seed", "run seed; per-sample seeds derive from it"),
    "max_tokens": ("max_tokens", "cap on generated tokens"),
    "wait": ("wait", "forcing: most 'Wait' insertions"),
    "batch_size": (
        "batch_size",
        "transformers: generate prompt/none samples N at a time in one batched call, seeded per batch, so rows "
        "depend on N (1: one by one)",
    ),
    "concurrency": (
        "concurrency",
        "endpoints, vllm: keep up to N samples in flight (vllm: 1 means all); rows are the same at any N",
    ),
    "out": ("out", "output folder; an existing one is resumed"),
    "progress": ("progress", "a progress bar on a terminal; --no-progress: one line when done"),
}


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """EvalConfig from ``--config FILE``, then the flags, then ``--set key=value`` overrides."""
    return config.config_from_args(EvalConfig, args, FLAGS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: ``l1lite eval [--config FILE] [flags]`` and ``l1lite eval compare DIR... --out DIR``."""
    add_config_arguments(parser, EvalConfig, FLAGS)
    parser.add_argument("--force", action="store_true", help="discard earlier results in --out and start over")
    sub = parser.add_subparsers(dest="eval_command", metavar="{compare}")
    cmp = sub.add_parser("compare", help="put eval runs side by side in one report and one set of plots")
    cmp.add_argument("runs", nargs="+", metavar="DIR", help="eval output folders")
    cmp.add_argument("--out", dest="compare_out", metavar="DIR", required=True, help="folder for the comparison report")
    cmp.add_argument("--force", dest="compare_force", action="store_true", help="overwrite --out")


def run(args: argparse.Namespace) -> int:
    """CLI entry point."""
    if getattr(args, "eval_command", None) == "compare":
        from l1lite.eval.report import compare

        path = compare(args.runs, args.compare_out, force=args.compare_force)
        print(f"comparison written to {path}")
        return 0
    cfg = config_from_args(args)
    summary = evaluate(cfg, force=args.force)
    for row in summary["rows"]:
        print(
            f"{row['strategy']:>8} budget {row['budget']:>5}: accuracy {row['accuracy']:.3f}, "
            f"mean tokens {row['mean_tokens']:.1f}, rel. error {row['rel_error']:.3f}"
        )
    print(f"report written to {Path(cfg.out) / 'report.md'}")
    return 0

"""``l1lite train``: the command over :func:`l1lite.train.run.train`."""

from __future__ import annotations

import argparse
import json
import logging

from l1lite.core.config import TrainConfig, load_config
from l1lite.train.run import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: ``l1lite train --config FILE [--set k=v ...] [--resume [CHECKPOINT]] [--gpu CARD] [--force]
    [--no-progress]``."""
    parser.add_argument("--config", help="training config: a YAML path or a shipped preset name (l1lite presets)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT")
    parser.add_argument(
        "--gpu",
        help="plan and check memory for this card (T4, L4, A10G, 3090, 4090, A100-40, A100-80, "
        "H100 or a size such as 16GB) instead of the detected GPU",
    )
    parser.add_argument("--force", action="store_true", help="train even when the planned peak exceeds the GPU")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bars, one line per stage (trainer.disable_tqdm=true)"
    )


def run(args: argparse.Namespace) -> int:
    """CLI entry point."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    flags = ["trainer.disable_tqdm=true"] if args.no_progress else []
    cfg = load_config(TrainConfig, args.config, flags + args.overrides)
    summary = train(cfg, resume=args.resume, gpu=args.gpu, force=args.force, show_plan=True)
    print(json.dumps({k: summary[k] for k in ("backend", "global_step", "train_loss", "adapter")}, indent=2))
    return 0

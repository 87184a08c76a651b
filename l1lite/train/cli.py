"""``l1lite train``: the command over :func:`l1lite.train.run.train`."""

from __future__ import annotations

import argparse
import json
import logging

from l1lite.core.config import TrainConfig, load_config
from l1lite.train.run import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: ``l1lite train --config FILE [--set k=v ...] [--resume [CHECKPOINT]]``."""
    parser.add_argument("--config", help="training config: a YAML path or a shipped preset name (l1lite presets)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT")


def run(args: argparse.Namespace) -> int:
    """CLI entry point."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = load_config(TrainConfig, args.config, args.overrides)
    summary = train(cfg, resume=args.resume)
    print(json.dumps({k: summary[k] for k in ("backend", "global_step", "train_loss", "adapter")}, indent=2))
    return 0

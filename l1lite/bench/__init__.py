"""Benchmarks that measure what l1lite promises, built only from its pipeline stages (``l1lite bench NAME``).

- ``dial`` (:mod:`l1lite.bench.dial`): the toy task (:mod:`l1lite.bench.toy`) on a tiny model after a format
  warm-up (:mod:`l1lite.bench.warmup`), before and after LCPO.

Owns the ``l1lite bench`` command. It may import any stage; nothing in the pipeline imports this package.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: ``l1lite bench dial [--out DIR] [--minutes M] [--quick] [--force]``."""
    parser.add_argument("name", choices=["dial"], help="benchmark to run")
    parser.add_argument("--out", default="runs/bench-dial", help="output folder (default runs/bench-dial)")
    parser.add_argument("--minutes", type=float, default=15.0, help="training time budget (default 15)")
    parser.add_argument("--quick", action="store_true", help="the reduced configuration of the test suite")
    parser.add_argument("--force", action="store_true", help="replace an earlier run in --out")


def run(args: argparse.Namespace) -> int:
    """CLI entry point."""
    from l1lite.bench.dial import QUICK, REPORT, DialSettings, bench_dial, table

    summary = bench_dial(args.out, QUICK if args.quick else DialSettings(), args.minutes, args.force)
    print(table(summary))
    print(f"report: {Path(args.out) / REPORT}")
    return 0

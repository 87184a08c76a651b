"""Benchmarks that measure what l1lite promises, built only from its pipeline stages (``l1lite bench NAME``).

- ``dial`` (:mod:`l1lite.bench.dial`): the toy task (:mod:`l1lite.bench.toy`) on a tiny model after a format
  warm-up (:mod:`l1lite.bench.warmup`), before and after LCPO.
- ``real`` (:mod:`l1lite.bench.real`): a pretrained model l1lite did not build, through ``l1lite train`` with a
  shipped preset and ``l1lite eval``, before and after.

Both run the before/after harness of :mod:`l1lite.bench.harness`; each module's ``BENCH`` describes it to the command.

Owns the ``l1lite bench`` command. Imports core, train and eval; nothing in the pipeline imports this package.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from l1lite.core.config import ConfigError, int_list


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: ``l1lite bench {dial,real} [--out DIR] [--quick] [--force] [--no-progress]``."""
    parser.add_argument("name", choices=["dial", "real"], help="benchmark to run")
    parser.add_argument("--out", help="output folder (default runs/bench-NAME)")
    parser.add_argument("--seeds", type=int_list, help="comma-separated seeds (default: the benchmark's)")
    parser.add_argument("--quick", action="store_true", help="the reduced configuration of the test suite")
    parser.add_argument("--force", action="store_true", help="replace an earlier run in --out")
    parser.add_argument("--skip-base", action="store_true", help="real: leave the base eval to a parallel run")
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="dial: no progress bars, one line per stage (real prints a line as each command starts and ends)",
    )


def run(args: argparse.Namespace) -> int:
    """CLI entry point."""
    from dataclasses import replace

    from l1lite.bench import dial, real
    from l1lite.bench.harness import REPORT

    if args.skip_base and args.name != "real":
        raise ConfigError(f"--skip-base is for bench real (the base eval of a parallel run), not bench {args.name}")
    bench = {"dial": dial.BENCH, "real": real.BENCH}[args.name]
    out = Path(args.out or f"runs/bench-{args.name}")
    settings = bench.quick if args.quick else bench.settings()
    if args.seeds:
        settings = replace(settings, seeds=args.seeds)
    kwargs = {"skip_base": True} if args.skip_base else {}
    if args.name == "dial":
        kwargs["progress"] = not args.no_progress
    summary = bench.run(out, settings, args.force, **kwargs)
    print(bench.table(summary))
    print(f"report: {out / REPORT}")
    return 0

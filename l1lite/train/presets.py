"""``l1lite presets``: the shipped training presets, the names ``--config`` accepts, and their text.

Prints what :mod:`l1lite.core.config` finds (it owns the presets and their lookup); imports nothing else.
"""

from __future__ import annotations

import argparse

from l1lite.core.config import config_file, presets


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: ``l1lite presets [NAME]``."""
    parser.add_argument("name", nargs="?", help="print this preset's YAML (to copy and edit) instead of the list")


def run(args: argparse.Namespace) -> int:
    """CLI entry point."""
    if args.name:
        print(config_file(args.name).read_text(), end="")
        return 0
    shipped = presets()
    width = max(map(len, shipped))
    for name, description in shipped.items():
        print(f"{name:<{width}}  {description}")
    return 0

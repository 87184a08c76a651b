"""Interactive chat with a thinking budget: ``l1lite chat`` (change it with /budget, /mode, /enforce).

Owns the chat loop and its /commands; the options, the backend and the summary line come from the
shared CLI helpers in cli.py. Nothing imports this module but the ``l1lite`` dispatcher.
"""

from __future__ import annotations

import argparse
import sys

from l1lite.core import prompts
from l1lite.core.config import ConfigError, PromptConfig
from l1lite.inference.budget import generate
from l1lite.inference.cli import (
    add_backend_arguments,
    add_budget_arguments,
    backend_from_args,
    budget_from_args,
    check_sampling,
    sampling_from_args,
    summary,
)
from l1lite.inference.types import ENFORCE

HELP = (
    "commands: /budget N|none, /mode exact|max, /enforce none|cap|forcing, /reset (forget the conversation), "
    "/help, /quit"
)


def _command(line: str, args: argparse.Namespace, history: list) -> bool:
    """Apply one /command to the session's options ``args`` (or to ``history``); False for /quit."""
    name, _, value = line.partition(" ")
    value = value.strip()
    if name in ("/quit", "/exit"):
        return False
    if name == "/budget":
        if value.lower() == "none":
            args.budget = None
        elif value.isdigit() and int(value) > 0:
            args.budget = int(value)
        else:
            raise ConfigError(f"/budget wants a positive integer or 'none', got {value!r}")
    elif name == "/mode":
        if value not in prompts.MODES:
            raise ConfigError(f"/mode wants one of {', '.join(prompts.MODES)}, got {value!r}")
        args.mode = value
    elif name == "/enforce":
        if value not in ENFORCE:
            raise ConfigError(f"/enforce wants one of {', '.join(ENFORCE)}, got {value!r}")
        args.enforce = value
    elif name == "/reset":
        history.clear()
    elif name == "/help":
        print(HELP)
        return True
    else:
        raise ConfigError(f"unknown command {name} ({HELP})")
    budget = "none" if args.budget is None else args.budget
    print(f"[budget {budget} {args.mode}, enforce {args.enforce}]")
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: ``l1lite chat``."""
    add_backend_arguments(parser)
    add_budget_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """CLI entry point: read questions and /commands from stdin until /quit or end of input."""
    args = argparse.Namespace(**vars(args))  # the session's options: /commands change this copy
    budget_from_args(args)  # the flags checked before the model loads
    check_sampling(args.temperature, args.top_p)
    backend = backend_from_args(args)
    history: list[dict[str, str]] = []
    print(HELP)
    turn = 0
    try:
        while True:
            try:
                line = input("> ").strip()
            except EOFError:
                break
            if not line:
                continue
            try:
                if line.startswith("/"):
                    if not _command(line, args, history):
                        break
                    continue
                budget = budget_from_args(args)
                sampling = sampling_from_args(args, turn)
                res = generate(
                    backend, line, budget, sampling, history=history, on_text=lambda s: print(s, end="", flush=True)
                )
            except ConfigError as e:
                print(f"error: {e}", file=sys.stderr)
                continue
            turn += 1
            print()
            print(summary(res))
            content = prompts.user_message(line, budget.budget, budget.mode, PromptConfig())
            history += [{"role": "user", "content": content}, {"role": "assistant", "content": res.text}]
    finally:
        backend.close()
    return 0

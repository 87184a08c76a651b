"""Interactive chat with a thinking budget: ``l1lite chat`` (change it with /budget, /mode, /enforce)."""

from __future__ import annotations

import sys

from l1lite import prompts
from l1lite.config import ConfigError, PromptConfig
from l1lite.inference import (
    ENFORCE,
    add_backend_arguments,
    add_budget_arguments,
    backend_from_args,
    generate,
    generation_kwargs,
    summary,
)

HELP = (
    "commands: /budget N|none, /mode exact|max, /enforce none|cap|forcing, /reset (forget the conversation), "
    "/help, /quit"
)


def _command(line: str, settings: dict, history: list) -> bool:
    """Apply one /command to ``settings`` (or ``history``); False for /quit."""
    name, _, value = line.partition(" ")
    value = value.strip()
    if name in ("/quit", "/exit"):
        return False
    if name == "/budget":
        if value.lower() == "none":
            settings["budget"] = None
        elif value.isdigit() and int(value) > 0:
            settings["budget"] = int(value)
        else:
            raise ConfigError(f"/budget wants a positive integer or 'none', got {value!r}")
    elif name == "/mode":
        if value not in prompts.MODES:
            raise ConfigError(f"/mode wants one of {', '.join(prompts.MODES)}, got {value!r}")
        settings["mode"] = value
    elif name == "/enforce":
        if value not in ENFORCE:
            raise ConfigError(f"/enforce wants one of {', '.join(ENFORCE)}, got {value!r}")
        settings["enforce"] = value
    elif name == "/reset":
        history.clear()
    elif name == "/help":
        print(HELP)
        return True
    else:
        raise ConfigError(f"unknown command {name} ({HELP})")
    budget = settings["budget"]
    print(f"[budget {'none' if budget is None else budget} {settings['mode']}, enforce {settings['enforce']}]")
    return True


def add_arguments(parser) -> None:
    """CLI: ``l1lite chat``."""
    add_backend_arguments(parser)
    add_budget_arguments(parser)


def run(args) -> int:
    """CLI entry point: read questions and /commands from stdin until /quit or end of input."""
    settings = generation_kwargs(args)
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
                    if not _command(line, settings, history):
                        break
                    continue
                res = generate(
                    backend,
                    line,
                    history=history,
                    seed=args.seed + turn,
                    on_text=lambda s: print(s, end="", flush=True),
                    **settings,
                )
            except ConfigError as e:
                print(f"error: {e}", file=sys.stderr)
                continue
            turn += 1
            print()
            print(summary(res))
            content = prompts.user_message(line, settings["budget"], settings["mode"], PromptConfig())
            history += [{"role": "user", "content": content}, {"role": "assistant", "content": res.text}]
    finally:
        backend.close()
    return 0

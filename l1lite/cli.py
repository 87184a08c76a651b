"""The ``l1lite`` command: a thin dispatcher to each stage's ``add_arguments`` / ``run``.

Owns the command table, exit code 2 with a one-line message for a :class:`ConfigError`, an existing or unusable
output or a flag argparse refuses (no usage block: ``--help`` shows it), and exit code 1 with one line for a write
that found no room (disk full, file size limit); and silences third-party notices and progress bars that are not the
user's business (:data:`QUIET`; transformers' bars of weights loaded and shards written, datasets' of splits
generated and rows mapped): l1lite shows each stage's own progress (:mod:`l1lite.core.progress`). Imports a
command's module only when that command runs (or shows its help); no module imports it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import NoReturn

from l1lite.core.config import ConfigError
from l1lite.core.files import NoRoomError, OutputExistsError, OutputPathError


class _Quiet(logging.Filter):
    """Drops a logger's records whose message starts with ``start``."""

    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


# logger -> the filter of a third-party notice it drops
QUIET = {
    # printed on every import of TRL on a CPU machine
    "bitsandbytes.backends.cpu.ops": _Quiet("Failed to load CPU gemm_4bit_forward from kernels-community"),
    # a BPE tokenizer (SmolLM2's) whose config asks for a cleanup transformers rightly skips
    "transformers.tokenization_utils_tokenizers": _Quiet("Ignoring clean_up_tokenization_spaces=True for BPE"),
    # the process group an in-process vLLM engine starts for itself, seen by the hindsight start's SFT
    "transformers.training_args": _Quiet("torch.distributed process group is initialized, but parallel_mode !="),
}

# subcommand -> (module, one-line help); each module defines add_arguments(parser) and run(args) -> int
COMMANDS = {
    "tiny-model": ("l1lite.core.tiny", "build the offline tiny Qwen2 model and R1-style tokenizer"),
    "demo": ("l1lite.demo", "run the whole pipeline on the tiny model (CPU, offline)"),
    "presets": ("l1lite.train.presets", "list the shipped training presets (names for --config) or print one"),
    "train": ("l1lite.train.cli", "GRPO training with LCPO rewards and a target-length curriculum"),
    "plan": ("l1lite.train.plan", "peak memory and time of a training run on a GPU, and the nearest settings that fit"),
    "curriculum": ("l1lite.train.preview", "preview a target-length schedule"),
    "export": ("l1lite.export.cli", "merge a LoRA adapter and export GGUF + Ollama Modelfile"),
    "generate": ("l1lite.inference.cli", "generate with a thinking budget"),
    "chat": ("l1lite.inference.chat", "interactive chat with a thinking budget"),
    "serve": ("l1lite.serve.cli", "OpenAI-compatible server with a thinking budget per request"),
    "eval": ("l1lite.eval.cli", "accuracy and length against budget"),
    "bench": ("l1lite.bench", "benchmarks (e.g. `l1lite bench dial`)"),
}


def quiet_libraries() -> None:
    """Turn off the third-party notices of :data:`QUIET` and progress bars (before those libraries are imported;
    hub downloads keep their bars, and an ``HF_*_DISABLE_PROGRESS_BARS`` the user set has priority)."""
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    for name, quiet in QUIET.items():
        logging.getLogger(name).addFilter(quiet)  # once: a logger keeps one of each filter
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # read when datasets is imported
    if "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ:
        disable_progress_bars()  # transformers reads this switch when imported: its own bars are off
        enable_progress_bars("huggingface_hub")  # downloads keep theirs


class Parser(argparse.ArgumentParser):
    """An argparse parser (and its subcommands' parsers) whose refusals are one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (--help for usage)\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``l1lite`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    quiet_libraries()
    parser = Parser(prog="l1lite", description="Teach a reasoning model to obey a thinking budget.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    parsers = {}
    for name, (module, help_text) in COMMANDS.items():
        parsers[name] = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            importlib.import_module(module).add_arguments(parsers[name])
    args, extra = parser.parse_known_args(argv)
    if extra:  # refused by the subcommand's parser, so the message names it
        parsers[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except (ConfigError, OutputExistsError, OutputPathError) as e:
        print(f"l1lite {args.command}: error: {e}", file=sys.stderr)
        return 2
    except NoRoomError as e:
        print(f"l1lite {args.command}: error: no room to write {e.filename} ({e.strerror})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""``l1lite generate``, and the command-line pieces it shares with ``l1lite chat``.

The shared options (model / endpoint, budget, sampling) and what they turn into: a backend, a
``Budget``, a ``Sampling``; question files and the one-line summary. Imports the package's modules;
only chat.py and l1lite.serve import this one (and no backend or budget module may).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from l1lite.core import prompts
from l1lite.core.config import BudgetConfig, ConfigError, utf8_line
from l1lite.inference.base import Backend
from l1lite.inference.budget import check_room, generate
from l1lite.inference.load import load_backend
from l1lite.inference.types import CAP_MESSAGE_EXAMPLE, ENFORCE, Budget, GenerationResult, Sampling


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Model / endpoint options shared by ``generate`` and ``chat``."""
    g = parser.add_argument_group("model")
    g.add_argument("--model", help="a .gguf file (llama.cpp), an HF model folder (transformers), or the served name")
    g.add_argument("--adapter", help="PEFT LoRA adapter folder (HF models)")
    g.add_argument("--endpoint", help="OpenAI-compatible server URL, e.g. http://127.0.0.1:8080/v1")
    g.add_argument("--tokenizer", help="with --endpoint: HF tokenizer folder or .gguf for the template and counts")
    g.add_argument("--n-ctx", type=int, default=8192, help="llama.cpp context size (default 8192)")
    g.add_argument("--threads", type=int, help="llama.cpp threads (default: llama-cpp-python's choice)")


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """Budget, enforcement and sampling options shared by ``generate`` and ``chat``."""
    b, s = BudgetConfig(), Sampling()
    g = parser.add_argument_group("budget")
    g.add_argument("--budget", type=int, help="thinking budget N in tokens (omit: no budget sentence)")
    g.add_argument("--mode", choices=prompts.MODES, default=b.mode, help="'Think for N' or 'for maximum N'")
    g.add_argument("--enforce", choices=ENFORCE, default=b.enforce, help="none | cap (close at N) | forcing (s1)")
    g.add_argument("--min-tokens", type=int, help="forcing: minimum thinking tokens (default: the budget)")
    g.add_argument(
        "--wait", type=int, default=b.wait, help=f"forcing: at most this many 'Wait' insertions (default {b.wait})"
    )
    g.add_argument(
        "--cap-message",
        default=b.cap_message,
        help=f"text written before </think> at the cap, e.g. {CAP_MESSAGE_EXAMPLE!r}",
    )
    g.add_argument(
        "--max-tokens", type=int, default=b.max_tokens, help=f"bound on all generated tokens (default {b.max_tokens})"
    )
    g.add_argument(
        "--temperature",
        type=float,
        default=s.temperature,
        help=f"sampling temperature, 0 greedy (default {s.temperature})",
    )
    g.add_argument("--top-p", type=float, default=s.top_p, help=f"nucleus sampling threshold (default {s.top_p})")
    g.add_argument("--seed", type=int, default=0, help="seed of the first generation; the n-th adds n (default 0)")


def backend_from_args(args: argparse.Namespace) -> Backend:
    """The backend the shared options describe."""
    return load_backend(
        args.model,
        args.adapter,
        args.endpoint,
        args.tokenizer,
        n_ctx=args.n_ctx,
        seed=args.seed,
        n_threads=args.threads,
    )


def budget_from_args(args: argparse.Namespace | BudgetConfig) -> Budget:
    """The ``Budget`` the shared options (or a ``ServeConfig``) describe (``ConfigError`` where they do not fit).

    An exact budget beyond ``--max-tokens`` is refused, a max budget beyond it warned about (see ``check_room``).
    """
    budget = Budget(**{f.name: getattr(args, f.name) for f in dataclasses.fields(BudgetConfig)})
    check_room(budget, budget.max_tokens, f"--max-tokens {budget.max_tokens}")
    return budget


def check_sampling(temperature: float, top_p: float) -> None:
    """Refuse a temperature below 0 or a top-p outside (0, 1], naming the flags (as eval and serve do)."""
    if not temperature >= 0:
        raise ConfigError(f"--temperature must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"--top-p must be in (0, 1], got {top_p}")


def sampling_from_args(args: argparse.Namespace, turn: int) -> Sampling:
    """The ``Sampling`` of the ``turn``-th generation (from 0): the seed is ``--seed`` + ``turn``."""
    check_sampling(args.temperature, args.top_p)
    return Sampling(temperature=args.temperature, top_p=args.top_p, seed=args.seed + turn)


def read_questions(path: str) -> list[str]:
    """One question per line, or JSONL rows with a ``question`` or ``problem`` field; ``-`` (or ``/dev/stdin``, a
    pipe) reads standard input."""
    p = Path("/dev/stdin" if path == "-" else path)
    if not p.exists():
        raise ConfigError(f"--file {path}: not found")
    if p.is_dir():
        raise ConfigError(f"--file {path}: is a folder, not a file of questions")
    data = sys.stdin.buffer.read() if path == "-" else p.read_bytes()
    lines = [(i, utf8_line(raw, f"{path}:{i}").strip()) for i, raw in enumerate(data.split(b"\n"), 1)]
    lines = [(i, line) for i, line in lines if line]
    if not (p.suffix == ".jsonl" or lines and lines[0][1].startswith("{")):
        return [line for _, line in lines]
    questions = []
    for i, line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"{path}:{i}: not a JSON object") from None
        question = row.get("question", row.get("problem")) if isinstance(row, dict) else None
        if not isinstance(question, str) or not question.strip():
            raise ConfigError(f"{path}:{i}: no 'question' or 'problem' text field")
        questions.append(question)
    if not questions:
        raise ConfigError(f"--file {path}: no questions (the file is empty)")
    return questions


def summary(res: GenerationResult) -> str:
    """One line of counts for humans."""
    budget = "none" if res.budget is None else f"{res.budget} {res.mode}"
    waits = f", {res.waits} waits" if res.waits else ""
    return (
        f"[thinking {res.thinking_tokens} + answer {res.answer_tokens} = {res.total_tokens} tokens; "
        f"budget {budget}; enforce {res.enforce}{waits}; finish {res.finish_reason}; boxed {res.boxed}]"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: ``l1lite generate``."""
    add_backend_arguments(parser)
    add_budget_arguments(parser)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="the question")
    src.add_argument("--file", help="one question per line, or JSONL with a question/problem field")
    parser.add_argument("--stream", action="store_true", help="print text as it is generated (stderr with --json)")
    parser.add_argument("--json", action="store_true", help="one JSON object per question on stdout")


def run(args: argparse.Namespace) -> int:
    """CLI entry point."""
    if args.prompt is not None and not args.prompt.strip():
        raise ConfigError("--prompt is empty: give the question")
    questions = [args.prompt] if args.prompt is not None else read_questions(args.file)
    budget = budget_from_args(args)
    check_sampling(args.temperature, args.top_p)
    backend = backend_from_args(args)
    stream_to = sys.stderr if args.json else sys.stdout
    try:
        for i, question in enumerate(questions):
            on_text = (lambda s: print(s, end="", flush=True, file=stream_to)) if args.stream else None
            res = generate(backend, question, budget, sampling_from_args(args, i), on_text=on_text)
            if args.stream:
                print(file=stream_to)
            if args.json:
                print(json.dumps(res.to_dict(), ensure_ascii=False), flush=True)
            else:
                if not args.stream:
                    print(res.text)
                print(summary(res), file=sys.stderr)
    finally:
        backend.close()
    return 0

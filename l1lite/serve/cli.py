"""``l1lite serve``: the command that builds a :class:`l1lite.serve.app.Service` and serves it."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

from l1lite.core.config import ConfigError
from l1lite.inference.cli import add_budget_arguments, budget_from_args
from l1lite.inference.load import load_backend
from l1lite.inference.types import Sampling
from l1lite.serve.app import EFFORTS, Service, make_server

log = logging.getLogger(__name__)


def _efforts(text: str) -> dict[str, int]:
    parts = text.split(",")
    if len(parts) != len(EFFORTS) or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"--effort-budgets wants three positive integers LOW,MEDIUM,HIGH, got {text!r}")
    return dict(zip(EFFORTS, (int(p) for p in parts), strict=True))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: ``l1lite serve``."""
    g = parser.add_argument_group("model")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a .gguf file, run in-process with llama.cpp (one request at a time)")
    src.add_argument("--upstream", help="an OpenAI-compatible server's URL (llama-server, Ollama /v1, vLLM)")
    g.add_argument("--tokenizer", help="with --upstream: the served model's HF tokenizer folder or .gguf")
    g.add_argument("--served-model", help="with --upstream: the model name to ask for (default: the first listed)")
    g.add_argument("--name", help="the model id clients see (default: the GGUF's file name or the upstream's model)")
    g.add_argument("--n-ctx", type=int, default=8192, help="llama.cpp context size (default 8192)")
    g.add_argument("--threads", type=int, help="llama.cpp threads (default: llama-cpp-python's choice)")
    h = parser.add_argument_group("server")
    h.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    h.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    h.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on /v1 requests")
    h.add_argument("--max-budget", type=int, default=32768, help="largest thinking_budget a request may ask for")
    h.add_argument("--effort-budgets", default="256,1024,4096", help="reasoning_effort low,medium,high budgets")
    h.add_argument("--max-body", type=int, default=1 << 20, help="largest request body in bytes (default 1 MiB)")
    h.add_argument("--queue", type=int, default=16, help="requests that may wait; more get HTTP 503 (default 16)")
    h.add_argument("--parallel", type=int, default=4, help="with --upstream: requests passed on at once (default 4)")
    h.add_argument(
        "--upstream-timeout", type=float, default=600, help="with --upstream: seconds of silence before HTTP 502"
    )
    add_budget_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """CLI entry point: serve until interrupted."""
    if args.upstream and not args.tokenizer:
        raise ConfigError("--upstream needs --tokenizer (HF folder or .gguf): it renders the prompt and counts tokens")
    if args.model and Path(args.model).suffix != ".gguf":
        raise ConfigError(f"--model wants a .gguf file, got {args.model}")
    if args.queue < 0 or args.parallel < 1 or args.max_budget < 1 or args.max_body < 1 or args.upstream_timeout <= 0:
        raise ConfigError("--queue must be >= 0, --parallel, --max-budget, --max-body >= 1, --upstream-timeout > 0")
    efforts = _efforts(args.effort_budgets)
    defaults = budget_from_args(argparse.Namespace(**{**vars(args), "enforce": "none"}))  # --enforce: per request
    if defaults.budget is not None:
        replace(defaults, enforce=args.enforce)  # checked now rather than at the first request
    backend = load_backend(
        args.served_model if args.upstream else args.model,
        endpoint=args.upstream,
        tokenizer=args.tokenizer,
        n_ctx=args.n_ctx,
        seed=args.seed,
        n_threads=args.threads,
        timeout=args.upstream_timeout,
    )
    name = args.name or (getattr(backend, "model", None) if args.upstream else Path(args.model).stem) or "l1lite"
    service = Service(
        backend,
        name,
        defaults,
        Sampling(temperature=args.temperature, top_p=args.top_p),
        enforce=args.enforce,
        workers=args.parallel if args.upstream else 1,
        queue=args.queue,
        max_budget=args.max_budget,
        efforts=efforts,
        api_key=args.api_key,
        max_body=args.max_body,
        upstream=bool(args.upstream),
    )
    server = make_server(service, args.host, args.port)
    host, port = server.server_address[:2]
    if not args.api_key and host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("listening on %s without --api-key: anyone who can reach this port can use the model", host)
    print(f"l1lite serve: {name} at http://{host}:{port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        backend.close()
    return 0

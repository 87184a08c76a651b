"""``l1lite serve``: the command that reads a :class:`ServeConfig`, builds the service and runs it under uvicorn."""

from __future__ import annotations

import argparse
import logging
import socket
from dataclasses import replace
from pathlib import Path

from l1lite.core import config, prompts
from l1lite.core.config import ConfigError, Flags, ServeConfig, add_config_arguments
from l1lite.inference.cli import budget_from_args, check_sampling
from l1lite.inference.load import load_backend
from l1lite.inference.types import ENFORCE, Budget

log = logging.getLogger(__name__)

# flag -> (ServeConfig key, help[, argparse keywords]); types and defaults come from ServeConfig
FLAGS: Flags = {
    "model": ("model", "a .gguf file, run in-process with llama.cpp (one request at a time)"),
    "upstream": ("upstream", "or an OpenAI-compatible server's URL (llama-server, Ollama /v1, vLLM)"),
    "tokenizer": ("tokenizer", "with --upstream: the served model's HF tokenizer folder or .gguf"),
    "served_model": ("served_model", "with --upstream: the model name to ask for (default: the first listed)"),
    "name": ("name", "the model id clients see (default: the GGUF's file name or the upstream's model)"),
    "n_ctx": ("n_ctx", "llama.cpp context size"),
    "threads": ("threads", "llama.cpp threads (default: llama-cpp-python's choice)"),
    "host": ("host", "address to listen on; 127.0.0.1 is this machine only"),
    "port": ("port", "port"),
    "api_key": ("api_key", "require 'Authorization: Bearer KEY' on /v1 requests"),
    "max_budget": ("max_budget", "largest thinking_budget a request may ask for"),
    "effort_budgets": ("effort_budgets", "reasoning_effort low,medium,high budgets"),
    "max_body": ("max_body", "largest request body in bytes"),
    "queue": ("queue", "requests that may wait; more get HTTP 503"),
    "parallel": ("parallel", "with --upstream: requests passed on at once"),
    "upstream_timeout": ("upstream_timeout", "with --upstream: seconds of silence before HTTP 502"),
    "request_timeout": ("request_timeout", "seconds a client has to send a request's headers, then its body (408)"),
    "budget": ("budget", "thinking budget N of a request that gives none (omit: no budget sentence)"),
    "mode": ("mode", "'Think for N' or 'for maximum N'", {"choices": prompts.MODES}),
    "enforce": ("enforce", "of a request with a budget: none | cap (close at N) | forcing (s1)", {"choices": ENFORCE}),
    "min_tokens": ("min_tokens", "forcing: minimum thinking tokens (default: the budget)"),
    "wait": ("wait", "forcing: at most this many 'Wait' insertions"),
    "cap_message": ("cap_message", "text written before </think> at the cap"),
    "max_tokens": ("max_tokens", "bound on all generated tokens of a request that gives none"),
    "temperature": ("temperature", "sampling temperature"),
    "top_p": ("top_p", "nucleus sampling"),
    "seed": ("seed", "seed of the backend's seed stream (requests without a seed)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: ``l1lite serve [--config FILE] [flags]``."""
    add_config_arguments(parser, ServeConfig, FLAGS)


def check(cfg: ServeConfig) -> Budget:
    """The budget of a request that gives none; ``ConfigError`` where the settings cannot serve."""
    if bool(cfg.model) == bool(cfg.upstream):
        raise ConfigError("give one of --model (a .gguf file) or --upstream URL")
    if cfg.upstream and not cfg.tokenizer:
        raise ConfigError("--upstream needs --tokenizer (HF folder or .gguf): it renders the prompt and counts tokens")
    if cfg.model and Path(cfg.model).suffix != ".gguf":
        raise ConfigError(f"--model wants a .gguf file, got {cfg.model}")
    if cfg.queue < 0 or cfg.parallel < 1 or cfg.max_budget < 1 or cfg.max_body < 1 or cfg.upstream_timeout <= 0:
        raise ConfigError("--queue must be >= 0, --parallel, --max-budget, --max-body >= 1, --upstream-timeout > 0")
    if not cfg.request_timeout > 0:
        raise ConfigError(f"--request-timeout must be > 0, got {cfg.request_timeout}")
    if not 1 <= cfg.port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, got {cfg.port}")
    check_sampling(cfg.temperature, cfg.top_p)
    if len(cfg.effort_budgets) != 3 or min(cfg.effort_budgets) < 1:
        raise ConfigError(f"--effort-budgets wants three positive integers LOW,MEDIUM,HIGH, got {cfg.effort_budgets}")
    defaults = budget_from_args(replace(cfg, enforce="none"))  # a request's enforce is its own
    if defaults.budget is not None:
        replace(defaults, enforce=cfg.enforce)  # checked now rather than at the first request
    return defaults


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (before the model loads); a ``ConfigError`` naming them where it cannot."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise ConfigError(f"--host {host}: not an address of this machine ({e})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def run(args: argparse.Namespace) -> int:
    """CLI entry point: serve until interrupted."""
    try:
        import uvicorn

        from l1lite.serve.app import Service, make_app, protocol
    except ModuleNotFoundError as e:
        raise ConfigError(f"l1lite serve needs {e.name}: pip install 'l1lite[serve]'") from None
    cfg = config.config_from_args(ServeConfig, args, FLAGS)
    defaults = check(cfg)
    sock = listen(cfg.host, cfg.port)
    try:
        backend = load_backend(
            cfg.served_model if cfg.upstream else cfg.model,
            endpoint=cfg.upstream,
            tokenizer=cfg.tokenizer,
            n_ctx=cfg.n_ctx,
            seed=cfg.seed,
            n_threads=cfg.threads,
            timeout=cfg.upstream_timeout,
        )
    except BaseException:
        sock.close()
        raise
    try:
        name = cfg.name or (getattr(backend, "model", None) if cfg.upstream else Path(cfg.model).stem) or "l1lite"
        service = Service(backend, name, cfg, defaults)
        if not cfg.api_key and cfg.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("listening on %s without --api-key: anyone who can reach this port can use the model", cfg.host)
        print(f"l1lite serve: {name} at http://{cfg.host}:{cfg.port}/v1", flush=True)
        settings = uvicorn.Config(make_app(service), http=protocol(cfg.request_timeout), timeout_graceful_shutdown=5)
        uvicorn.Server(settings).run(sockets=[sock])
    finally:
        sock.close()
        backend.close()
    return 0

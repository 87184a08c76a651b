"""``l1lite serve``: an OpenAI-compatible HTTP server whose requests carry a thinking budget.

Owns the HTTP side only: reading and checking a request (its budget fields, size and key), the bounded
admission queue, and writing OpenAI-style JSON, SSE chunks and error objects. The budget prompt and its
enforcement are ``l1lite.inference.generate``'s; the backend is ``load_backend``'s (in-process llama.cpp, or
an OpenAI-compatible upstream fed prompts rendered with a local tokenizer). Standard-library HTTP
(``http.server``). Imports l1lite.inference and its shared CLI options; nothing imports this module but
the ``l1lite`` dispatcher.
"""

from __future__ import annotations

import hmac
import http.client
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from l1lite.core import prompts
from l1lite.core.config import ConfigError, PromptConfig
from l1lite.core.r1 import THINK_CLOSE, THINK_OPEN
from l1lite.inference.base import Backend, Messages
from l1lite.inference.budget import generate
from l1lite.inference.types import ENFORCE, Budget, GenerationResult, Sampling

log = logging.getLogger(__name__)

EFFORTS = ("low", "medium", "high")
ROLES = ("system", "developer", "user", "assistant")
# what a failing backend raises: the upstream's HTTP errors (ConfigError), a dropped connection, bad JSON
BACKEND_ERRORS = (ConfigError, OSError, ValueError, http.client.HTTPException)


class ApiError(Exception):
    """A request that is refused, as an HTTP status and an OpenAI-style error object."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None, kind: str = ""
    ) -> None:
        """Refuse a request.

        Args:
            status: the HTTP status (400, 401, 404, 413, 502, 503).
            message: what was wrong, for the client's user.
            param: the request field at fault.
            code: a machine-readable reason.
            kind: the error ``type`` (default: ``invalid_request_error`` below 500, ``server_error`` above).
        """
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.kind = kind or ("invalid_request_error" if status < 500 else "server_error")

    def body(self) -> dict:
        """``{"error": {"message", "type", "param", "code"}}``."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


class ClientGone(Exception):
    """The client closed the connection while its answer was streamed."""


@dataclass
class ChatRequest:
    """A checked ``/v1/chat/completions`` request: the question, what came before, how to generate."""

    question: str
    history: Messages
    budget: Budget
    sampling: Sampling
    stream: bool
    include_usage: bool


def _text(content: Any, where: str) -> str:
    """A message's content: a string, or OpenAI's list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise ApiError(400, f"{where}: content must be a string or a list of text parts", where)


def _number(payload: dict, name: str, default: float, low: float, high: float) -> float:
    value = payload.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ApiError(400, f"{name} must be a number between {low} and {high}, got {value!r}", name)
    return float(value)


def _positive(payload: dict, name: str, high: int | None = None) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ApiError(400, f"{name} must be a positive integer, got {value!r}", name, "invalid_value")
    if high is not None and value > high:
        raise ApiError(400, f"{name} {value} is above this server's --max-budget {high}", name, "budget_too_large")
    return value


def _choice(payload: dict, name: str, valid: tuple[str, ...]) -> str | None:
    value = payload.get(name)
    if value is not None and value not in valid:
        raise ApiError(400, f"unknown {name} {value!r} (valid: {', '.join(valid)})", name, "invalid_value")
    return value


class _ThinkSplit:
    """Routes streamed text to ``reasoning_content`` up to the first ``</think>``, then to ``content``.

    Splits exactly as ``l1lite.core.r1.split_thinking`` splits the whole text (a leading ``<think>`` is dropped),
    holding back only what could still be the start of a marker.
    """

    def __init__(self, emit: Callable[[str, str], None]) -> None:
        self.emit = emit
        self.field = "reasoning_content"
        self.held = ""
        self.started = False

    def add(self, piece: str) -> None:
        self.held += piece
        if not self.started:
            body = self.held.lstrip()
            if len(body) < len(THINK_OPEN) and THINK_OPEN.startswith(body):
                return
            self.started = True
            if body.startswith(THINK_OPEN):
                self.held = body[len(THINK_OPEN) :]
        if self.field == "reasoning_content":
            end = self.held.find(THINK_CLOSE)
            if end < 0:
                keep = max((k for k in range(1, len(THINK_CLOSE)) if self.held.endswith(THINK_CLOSE[:k])), default=0)
                self._send(self.held[: len(self.held) - keep])
                self.held = self.held[len(self.held) - keep :]
                return
            self._send(self.held[:end])
            self.field, self.held = "content", self.held[end + len(THINK_CLOSE) :]
        self._send(self.held)
        self.held = ""

    def close(self) -> None:
        """Send what was held back."""
        self._send(self.held)
        self.held = ""

    def _send(self, text: str) -> None:
        if text:
            self.emit(self.field, text)


class Service:
    """The model behind the endpoints: checks requests, admits them through a bounded queue, generates."""

    def __init__(
        self,
        backend: Backend,
        name: str,
        defaults: Budget,
        sampling: Sampling,
        *,
        enforce: str = "none",
        workers: int = 1,
        queue: int = 16,
        max_budget: int = 32768,
        efforts: dict[str, int] | None = None,
        api_key: str | None = None,
        max_body: int = 1 << 20,
        upstream: bool = False,
    ) -> None:
        """Serve ``backend``.

        Args:
            backend: the model, shared by all requests.
            name: the model id ``/v1/models`` lists.
            defaults: the budget, mode and ``max_tokens`` (and forcing's settings) of a request that gives none.
            sampling: temperature and top-p of a request that gives none.
            enforce: the enforcement of a request that has a budget and gives none.
            workers: requests generated at once (1 for an in-process model).
            queue: requests that may wait for a worker; more get HTTP 503.
            max_budget: the largest thinking budget a request may ask for.
            efforts: ``reasoning_effort`` -> thinking budget.
            api_key: the Bearer key every ``/v1`` request must give (None: no key).
            max_body: the largest request body in bytes (HTTP 413 above).
            upstream: the backend is a remote server (its failures are HTTP 502).
        """
        self.backend, self.name, self.defaults, self.sampling = backend, name, defaults, sampling
        self.max_budget, self.api_key, self.max_body, self.upstream = max_budget, api_key, max_body, upstream
        self.enforce, self.efforts = enforce, efforts or {}
        self.workers, self.queue = workers, queue
        self.prompt_cfg = PromptConfig()
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._workers = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self.counts = {"running": 0, "queued": 0, "served": 0, "refused_busy": 0, "client_gone": 0}

    def count(self, **delta: int) -> None:
        """Add to the counts ``/health`` reports."""
        with self._lock:
            for key, d in delta.items():
                self.counts[key] += d

    def health(self) -> dict:
        with self._lock:
            return {"status": "ok", "model": self.name, "workers": self.workers, "queue": self.queue, **self.counts}

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.name, "object": "model", "created": 0, "owned_by": "l1lite"}]}

    def check_key(self, header: str | None) -> None:
        """HTTP 401 unless ``header`` is ``Bearer <api key>`` (or the server has no key)."""
        if self.api_key is None:
            return
        given = (header or "").removeprefix("Bearer ").strip()
        if not header or not hmac.compare_digest(given.encode(), self.api_key.encode()):
            raise ApiError(401, "invalid or missing API key (Authorization: Bearer <key>)", None, "invalid_api_key")

    def parse(self, payload: Any) -> ChatRequest:
        """Check a chat request and turn it into what ``generate`` takes; ``ApiError`` (400) where it is wrong."""
        if not isinstance(payload, dict):
            raise ApiError(400, "the request body must be a JSON object", None, "invalid_json")
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "messages must be a non-empty list", "messages")
        turns = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ROLES:
                raise ApiError(400, f"messages[{i}]: role must be one of {', '.join(ROLES)}", f"messages[{i}]")
            role = "system" if m["role"] == "developer" else m["role"]
            turns.append({"role": role, "content": _text(m.get("content"), f"messages[{i}]")})
        if turns[-1]["role"] != "user":
            raise ApiError(400, "the last message must be the user's", "messages")
        if payload.get("n", 1) != 1:
            raise ApiError(400, "only n=1 is supported", "n")
        effort = _choice(payload, "reasoning_effort", tuple(self.efforts))
        n = _positive(payload, "thinking_budget", self.max_budget)
        n = _positive(payload, "thinking_budget_tokens", self.max_budget) if n is None else n
        n = self.efforts[effort] if n is None and effort else n
        n = self.defaults.budget if n is None else n
        mode = _choice(payload, "budget_mode", prompts.MODES) or self.defaults.mode
        enforce = _choice(payload, "enforce", ENFORCE) or (self.enforce if n is not None else "none")
        max_tokens = _positive(payload, "max_completion_tokens") or _positive(payload, "max_tokens")
        max_tokens = max_tokens or self.defaults.max_tokens
        try:
            budget = replace(self.defaults, budget=n, mode=mode, enforce=enforce, max_tokens=max_tokens)
        except ConfigError as e:
            raise ApiError(400, str(e).replace("--", ""), None, "invalid_budget") from None
        seed = payload.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ApiError(400, f"seed must be an integer, got {seed!r}", "seed")
        bias = payload.get("logit_bias") or None
        try:
            bias = None if bias is None else {int(t): float(b) for t, b in dict(bias).items()}
        except (TypeError, ValueError):
            raise ApiError(400, "logit_bias must map token ids to numbers", "logit_bias") from None
        sampling = Sampling(
            temperature=_number(payload, "temperature", self.sampling.temperature, 0.0, 2.0),
            top_p=_number(payload, "top_p", self.sampling.top_p, 0.0, 1.0),
            seed=seed,
            logit_bias=bias,
        )
        options = payload.get("stream_options") or {}
        stream = payload.get("stream") is True
        include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
        return ChatRequest(turns[-1]["content"], turns[:-1], budget, sampling, stream, include_usage)

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Hold a worker for one request, waiting in the bounded queue; HTTP 503 when the queue is full."""
        if not self._slots.acquire(blocking=False):
            self.count(refused_busy=1)
            raise ApiError(
                503, f"server busy: {self.workers} running and {self.queue} queued; retry later", None, "queue_full"
            )
        try:
            self.count(queued=1)
            with self._workers:
                self.count(queued=-1, running=1, served=1)
                try:
                    yield
                finally:
                    self.count(running=-1)
        finally:
            self._slots.release()

    def run(self, req: ChatRequest, on_text: Callable[[str], None] | None = None) -> tuple[GenerationResult, int]:
        """Generate the answer to ``req`` (call inside ``admitted``): the result and the prompt's token count."""
        res = generate(
            self.backend,
            req.question,
            req.budget,
            req.sampling,
            prompt_cfg=self.prompt_cfg,
            history=req.history,
            on_text=on_text,
        )
        asked = prompts.messages(req.question, req.budget.budget, req.budget.mode, self.prompt_cfg)
        return res, self.backend.count_tokens(self.backend.render(req.history + asked))

    def failure(self, e: Exception) -> ApiError:
        """The error a backend failure during generation is reported as."""
        if self.upstream:
            return ApiError(502, f"upstream failed: {e}", None, "upstream_error")
        return ApiError(400 if isinstance(e, ConfigError) else 500, str(e), None, "generation_failed")

    def completion(self, res: GenerationResult, prompt_tokens: int) -> dict:
        """The ``chat.completion`` object of one result."""
        message = {"role": "assistant", "content": res.answer, "reasoning_content": res.thinking}
        return {
            **self.head("chat.completion"),
            "choices": [{"index": 0, "message": message, "finish_reason": res.finish_reason, "logprobs": None}],
            "usage": self.usage(res, prompt_tokens),
            "l1lite": {"budget": res.budget, "mode": res.mode, "enforce": res.enforce, "waits": res.waits},
        }

    def usage(self, res: GenerationResult, prompt_tokens: int) -> dict:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": res.total_tokens,
            "total_tokens": prompt_tokens + res.total_tokens,
            "completion_tokens_details": {"reasoning_tokens": res.thinking_tokens},
        }

    def head(self, kind: str) -> dict:
        """The fields every response object starts with: a fresh id, its kind, the time, the model."""
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()), "model": self.name}


class Handler(BaseHTTPRequestHandler):
    """The endpoints: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``."""

    service: Service  # set on the server's subclass
    server_version = "l1lite"

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            if path == "/health":
                self._json(200, self.service.health())
                return
            self.service.check_key(self.headers.get("Authorization"))
            if path != "/v1/models":
                raise ApiError(404, f"no route GET {path}", None, "not_found")
            self._json(200, self.service.models())
        except ApiError as e:
            self._json(e.status, e.body())

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            if path != "/v1/chat/completions":
                raise ApiError(404, f"no route POST {path}", None, "not_found")
            self.service.check_key(self.headers.get("Authorization"))
            req = self.service.parse(self._body())
            with self.service.admitted():
                if req.stream:
                    self._stream(req)
                    return
                try:
                    res, prompt_tokens = self.service.run(req)
                except BACKEND_ERRORS as e:
                    raise self.service.failure(e) from None
                self._json(200, self.service.completion(res, prompt_tokens))
        except ApiError as e:
            self._json(e.status, e.body())
        except ClientGone:
            self.service.count(client_gone=1)
            log.info("%s closed the connection mid-stream; its slot is free", self.address_string())

    def _body(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise ApiError(400, "a Content-Length header is required", None, "length_required")
        if int(length) > self.service.max_body:
            self.close_connection = True  # the body is not read
            raise ApiError(413, f"request body over {self.service.max_body} bytes", None, "request_too_large")
        try:
            return json.loads(self.rfile.read(int(length)))
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"malformed JSON: {e}", None, "invalid_json") from None

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            log.info("%s closed the connection before its answer", self.address_string())

    def _event(self, body: dict | str) -> None:
        data = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        try:
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()
        except OSError:
            raise ClientGone from None

    def _stream(self, req: ChatRequest) -> None:
        """SSE as OpenAI sends it: ``data: {chunk}`` events, reasoning before content, then ``data: [DONE]``."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        head = self.service.head("chat.completion.chunk")

        def chunk(delta: dict, finish: str | None = None) -> None:
            self._event({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]})

        chunk({"role": "assistant", "content": ""})
        split = _ThinkSplit(lambda field, text: chunk({field: text}))
        try:
            res, prompt_tokens = self.service.run(req, split.add)
        except BACKEND_ERRORS as e:
            self._event(self.service.failure(e).body())
        else:
            split.close()
            chunk({}, res.finish_reason)
            if req.include_usage:
                self._event({**head, "choices": [], "usage": self.service.usage(res, prompt_tokens)})
        self._event("[DONE]")


def make_server(service: Service, host: str, port: int) -> ThreadingHTTPServer:
    """A threaded HTTP server for ``service`` (one thread per connection), bound and ready to serve."""
    handler = type("ServiceHandler", (Handler,), {"service": service})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server

"""``l1lite serve``: an OpenAI-compatible HTTP server (FastAPI on uvicorn) whose requests carry a thinking budget.

Owns the HTTP side only: reading and checking a request (its budget fields, size and key), the bounded
admission queue, and writing OpenAI-style JSON, SSE chunks (sse-starlette) and error objects; FastAPI serves
the OpenAPI schema at ``/openapi.json``. Generation blocks, so it runs in a worker thread; a client that
disconnects aborts it (the text callback stops, an upstream's open requests are shut), which frees the worker.
The budget prompt and its enforcement are ``l1lite.inference.generate``'s; the backend is ``load_backend``'s
(in-process llama.cpp, or an OpenAI-compatible upstream fed prompts rendered with a local tokenizer). Imports
l1lite.core and l1lite.inference; nothing imports this module but ``l1lite.serve.cli``.
"""

from __future__ import annotations

import asyncio
import hmac
import http
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import anyio
import h11
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from l1lite.core import prompts
from l1lite.core.config import ConfigError, PromptConfig, ServeConfig
from l1lite.core.r1 import THINK_CLOSE, THINK_OPEN
from l1lite.inference.base import Backend, Messages, partial_marker
from l1lite.inference.budget import check_room, generate
from l1lite.inference.openai import Abort
from l1lite.inference.types import ENFORCE, Budget, GenerationResult, Sampling

log = logging.getLogger(__name__)

EFFORTS = ("low", "medium", "high")
ROLES = ("system", "developer", "user", "assistant")
MAX_HEADERS = 16 * 1024  # bytes of request headers, as h11 bounds headers that arrive in pieces
# what a failing backend raises: the upstream's HTTP errors (ConfigError), a dropped connection, bad JSON
BACKEND_ERRORS = (ConfigError, OSError, ValueError)


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
    """The client closed the connection before its answer was complete."""


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
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        content = "".join(str(p.get("text", "")) for p in content)
    if not isinstance(content, str):
        raise ApiError(400, f"{where}: content must be a string or a list of text parts", where)
    try:
        content.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"{where}: content is not valid Unicode (lone surrogate)", where, "invalid_value") from None
    return content


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
                keep = partial_marker(self.held, [THINK_CLOSE])
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

    def __init__(self, backend: Backend, name: str, cfg: ServeConfig, defaults: Budget) -> None:
        """Serve ``backend``.

        Args:
            backend: the model, shared by all requests.
            name: the model id ``/v1/models`` lists.
            cfg: the server's settings (``cfg.upstream`` set: the backend is a remote server, its failures HTTP 502).
            defaults: the budget, mode and ``max_tokens`` (and forcing's settings) of a request that gives none.
        """
        self.backend, self.name, self.cfg, self.defaults = backend, name, cfg, defaults
        self.sampling = Sampling(temperature=cfg.temperature, top_p=cfg.top_p)
        self.efforts = dict(zip(EFFORTS, cfg.effort_budgets, strict=True))
        self.upstream = bool(cfg.upstream)
        self.workers = cfg.parallel if self.upstream else 1
        self.prompt_cfg = PromptConfig()
        self._threads = anyio.CapacityLimiter(self.workers)
        self._admitted = 0  # running or waiting; changed on the event loop only
        self.counts = {"served": 0, "refused_busy": 0, "client_gone": 0}

    def health(self) -> dict:
        running = self._threads.borrowed_tokens
        counts = {"running": running, "queued": self._admitted - running, **self.counts}
        return {"status": "ok", "model": self.name, "workers": self.workers, "queue": self.cfg.queue, **counts}

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.name, "object": "model", "created": 0, "owned_by": "l1lite"}]}

    def check_key(self, header: str | None) -> None:
        """HTTP 401 unless ``header`` is ``Bearer <api key>`` (the scheme in any case; or the server has no key)."""
        if self.cfg.api_key is None:
            return
        scheme, _, given = (header or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.cfg.api_key.encode()):
            raise ApiError(401, "invalid or missing API key (Authorization: Bearer <key>)", None, "invalid_api_key")

    async def read(self, request: Request) -> ChatRequest:
        """The checked request: HTTP 400 without a length or with malformed JSON, 413 over ``max_body``."""
        length = request.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise ApiError(400, "a Content-Length header is required", None, "length_required")
        if int(length) > self.cfg.max_body:
            raise ApiError(413, f"request body over {self.cfg.max_body} bytes", None, "request_too_large")
        try:
            with anyio.fail_after(self.cfg.request_timeout):
                body = await request.body()
        except TimeoutError:
            message = f"the request body did not arrive within {self.cfg.request_timeout:g} s"
            raise ApiError(408, message, None, "request_timeout") from None
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"malformed JSON: {e}", None, "invalid_json") from None
        return self.parse(payload)

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
        if payload.get("stream") is not None and not isinstance(payload["stream"], bool):
            raise ApiError(400, f"stream must be true or false, got {payload['stream']!r}", "stream", "invalid_value")
        stop = payload.get("stop")
        if (
            stop is not None
            and not isinstance(stop, str)
            and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
        ):
            raise ApiError(400, f"stop must be a string or a list of strings, got {stop!r}", "stop", "invalid_value")
        if stop:
            raise ApiError(400, "stop sequences are not supported by this server", "stop", "unsupported_parameter")
        effort = _choice(payload, "reasoning_effort", tuple(self.efforts))
        n = _positive(payload, "thinking_budget", self.cfg.max_budget)
        n = _positive(payload, "thinking_budget_tokens", self.cfg.max_budget) if n is None else n
        n = self.efforts[effort] if n is None and effort else n
        n = self.defaults.budget if n is None else n
        mode = _choice(payload, "budget_mode", prompts.MODES) or self.defaults.mode
        enforce = _choice(payload, "enforce", ENFORCE) or (self.cfg.enforce if n is not None else "none")
        max_tokens = _positive(payload, "max_completion_tokens") or _positive(payload, "max_tokens")
        max_tokens = max_tokens or self.defaults.max_tokens
        try:
            budget = replace(self.defaults, budget=n, mode=mode, enforce=enforce, max_tokens=max_tokens)
            check_room(budget, max_tokens, f"max_tokens {max_tokens}")  # as the CLI checks --max-tokens
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
        if not isinstance(options, dict):
            raise ApiError(400, f"stream_options must be an object, got {options!r}", "stream_options")
        stream = payload.get("stream") is True
        include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
        return ChatRequest(turns[-1]["content"], turns[:-1], budget, sampling, stream, include_usage)

    def admit(self) -> None:
        """Take a place for one request, running or waiting for a worker (``release`` gives it back); HTTP 503 when
        the queue is full."""
        if self._admitted >= self.workers + self.cfg.queue:
            self.counts["refused_busy"] += 1
            raise ApiError(
                503, f"server busy: {self.workers} running and {self.cfg.queue} queued; retry later", None, "queue_full"
            )
        self._admitted += 1
        self.counts["served"] += 1

    def release(self) -> None:
        self._admitted -= 1

    async def answer(
        self, request: Request, req: ChatRequest, emit: Callable[[str, str], None] | None = None
    ) -> tuple[GenerationResult, int]:
        """``run`` in a worker thread once one is free; ``ClientGone`` when the client disconnects meanwhile.

        Args:
            request: the HTTP request, watched for the client's disconnect.
            req: the checked chat request.
            emit: receives ``(field, text)`` as it is generated (called in the worker thread).
        """
        abort = Abort()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch, request, abort)
            try:
                return await anyio.to_thread.run_sync(self.run, req, abort, emit, limiter=self._threads)
            except (ClientGone, *BACKEND_ERRORS) as e:
                gone = abort.done
                self.counts["client_gone"] += gone
                failure = ClientGone() if gone else self.failure(e)
            finally:
                tg.cancel_scope.cancel()
        raise failure

    def run(
        self, req: ChatRequest, abort: Abort, emit: Callable[[str, str], None] | None = None
    ) -> tuple[GenerationResult, int]:
        """Generate the answer to ``req`` (blocking): the result and the prompt's token count.

        Args:
            req: the checked chat request.
            abort: once set, the generation stops at its next piece of text (``ClientGone``), or when its upstream
                requests are shut.
            emit: receives ``(field, text)``, reasoning then content, as it is generated.
        """
        split = _ThinkSplit(emit) if emit else None

        def listen(text: str) -> None:
            if abort.done:
                raise ClientGone
            if split:
                split.add(text)

        with abort:
            res = generate(
                self.backend,
                req.question,
                req.budget,
                req.sampling,
                prompt_cfg=self.prompt_cfg,
                history=req.history,
                on_text=listen if split or not self.upstream else None,  # an upstream streams only to a stream
            )
        if split:
            split.close()
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

    def stream(self, request: Request, req: ChatRequest) -> EventSourceResponse:
        """SSE as OpenAI sends it: ``data: {chunk}`` events, reasoning before content, then ``data: [DONE]``.

        Gives the request's place back (``release``) when the stream ends.
        """
        send, receive = anyio.create_memory_object_stream[str](math.inf)
        head = self.head("chat.completion.chunk")

        def chunk(delta: dict, finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return json.dumps({**head, "choices": [choice]}, ensure_ascii=False)

        def emit(field: str, text: str) -> None:
            try:
                anyio.from_thread.run_sync(send.send_nowait, chunk({field: text}))
            except anyio.BrokenResourceError:  # the response has ended: the client left
                raise ClientGone from None

        async def events() -> AsyncIterator[str]:
            with receive:
                async for event in receive:
                    yield event

        async def produce() -> None:
            try:
                with send:
                    send.send_nowait(chunk({"role": "assistant", "content": ""}))
                    try:
                        res, prompt_tokens = await self.answer(request, req, emit)
                    except ApiError as e:
                        send.send_nowait(json.dumps(e.body(), ensure_ascii=False))
                    else:
                        send.send_nowait(chunk({}, res.finish_reason))
                        if req.include_usage:
                            usage = {**head, "choices": [], "usage": self.usage(res, prompt_tokens)}
                            send.send_nowait(json.dumps(usage, ensure_ascii=False))
                    send.send_nowait("[DONE]")
            except ClientGone:
                log.info("%s closed the connection mid-stream; its worker is free", _client(request))
            finally:
                self.release()

        # the media type without a charset, as OpenAI sends it; no keep-alive comments between the data events
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        return EventSourceResponse(events(), headers=headers, ping=0, sep="\n", data_sender_callable=produce)


async def _watch(request: Request, abort: Abort) -> None:
    """Wait for the client to disconnect, then ``abort`` (also when cancelled: the generation ended)."""
    try:
        while (await request.receive())["type"] != "http.disconnect":
            pass
    finally:
        abort()


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "a client"


class _HeaderLimit:
    """ASGI middleware: HTTP 431 (JSON) for a request whose headers are over ``limit`` bytes.

    h11 bounds only headers that arrive in pieces; headers that arrive whole in one read pass at any size.
    """

    def __init__(self, app: Any, limit: int = MAX_HEADERS) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and sum(len(k) + len(v) + 4 for k, v in scope["headers"]) > self.limit:
            error = ApiError(431, f"request headers over {self.limit} bytes", None, "headers_too_large")
            await JSONResponse(error.body(), 431, headers={"Connection": "close"})(scope, receive, send)
            return
        await self.app(scope, receive, send)


def make_app(service: Service) -> FastAPI:
    """The endpoints: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health`` (and ``/openapi.json``)."""
    app = FastAPI(title="l1lite", summary="OpenAI-compatible chat with a thinking budget per request")
    app.add_middleware(_HeaderLimit)

    async def authorized(authorization: str | None = Header(None)) -> None:
        service.check_key(authorization)

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorized)])

    @app.exception_handler(ApiError)
    async def refused(request: Request, e: ApiError) -> JSONResponse:
        close = {"Connection": "close"} if e.status == 408 else None  # the rest of a late body is not awaited
        return JSONResponse(e.body(), e.status, headers=close)

    @app.exception_handler(HTTPException)
    async def no_route(request: Request, e: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code)
        error = ApiError(e.status_code, f"no route {request.method} {request.url.path}", None, code)
        return JSONResponse(error.body(), e.status_code)

    @app.exception_handler(ClientGone)
    async def gone(request: Request, e: ClientGone) -> Response:
        log.info("%s closed the connection before its answer; its worker is free", _client(request))
        return Response(status_code=499)  # never sent: the client has gone

    @app.get("/health")
    async def health() -> dict:
        return service.health()

    @v1.get("/models")
    async def models() -> dict:
        return service.models()

    body = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}

    @v1.post("/chat/completions", openapi_extra={"requestBody": body}, response_model=None)
    async def chat(request: Request) -> dict | EventSourceResponse:
        req = await service.read(request)
        service.admit()
        if req.stream:
            return service.stream(request, req)
        try:
            return service.completion(*await service.answer(request, req))
        finally:
            service.release()

    app.include_router(v1)
    return app


class _Connection(h11.Connection):
    """h11's server side, keeping the HTTP status its last protocol error suggests (431: headers too large)."""

    status = 400

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as e:
            self.status = e.error_status_hint
            raise


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's headers, and OpenAI-style JSON for HTTP errors.

    uvicorn times out only an idle kept-alive connection: a client that sends half its headers would hold the
    connection for ever. Here the headers must be whole ``header_timeout`` seconds after the connection opens
    (or the previous answer ends), else the client gets HTTP 408 (none if it sent nothing) and the connection is
    closed; the body's deadline
    is :meth:`Service.read`'s. A request h11 refuses (malformed, headers over its 16 kB limit) gets a JSON error.
    """

    header_timeout = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _Connection(h11.SERVER, self.conn._max_incomplete_event_size)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._started = True
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in (or the request failed)
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._started = False  # no byte of the next request yet: an idle connection is closed without an answer
        self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if not self._started:
            self.transport.close()
            return
        message = f"the request headers did not arrive within {self.header_timeout:g} s"
        self._send_error(408, message, "request_timeout")

    def send_400_response(self, msg: str) -> None:
        if self.transport.is_closing():  # more of the refused request arrived after the answer
            return
        status = self.conn.status
        if status == 431:
            self._send_error(431, "request headers too large", "headers_too_large")
        else:
            self._send_error(status, "invalid HTTP request", "invalid_http")

    def _send_error(self, status: int, message: str, code: str) -> None:
        """Write an error answer straight to the socket and close the connection."""
        body = json.dumps(ApiError(status, message, None, code).body()).encode()
        head = (
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


def protocol(header_timeout: float) -> type[H11Protocol]:
    """The uvicorn ``http`` protocol class of a server whose clients have ``header_timeout`` s to send headers."""
    return type("Protocol", (_Protocol,), {"header_timeout": header_timeout})

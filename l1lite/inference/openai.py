"""The OpenAI-compatible backends: llama.cpp's server, Ollama's ``/v1``, vLLM, over HTTP (httpx2 and its SSE).

``OpenAIBackend`` feeds ``/v1/completions`` a prompt rendered locally with a tokenizer, which also
counts tokens, so every enforcement works. ``OpenAIChatBackend`` (no tokenizer) declares itself
chat-only: ``/v1/chat/completions`` with the server's template, no enforcement, no token counts.
A request is streamed only when ``on_text`` listens; an answer without a ``finish_reason`` is an error.
``Abort`` lets another thread end a generation's requests, a silent server's included.

Imports the backend interface, the value types and l1lite.core.r1. Must not import another backend, the
budget algorithm or the CLI.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from contextvars import ContextVar

import httpx2

from l1lite.core.config import ConfigError
from l1lite.core.r1 import THINK_CLOSE
from l1lite.inference.base import Backend, Messages, OnText, TextSink, Vocab
from l1lite.inference.types import Completion, Sampling

_ABORT: ContextVar[Abort | None] = ContextVar("l1lite_abort", default=None)
GRACE = 0.5  # seconds an aborted generation's requests get to end at a chunk before their sockets are shut


class Abort:
    """Ends one generation from another thread, a request to a silent server included.

    ``with abort:`` makes it current in the generating thread: each request made there keeps its connection's
    socket here. Calling it sets ``done`` (the caller's text callback checks it; no new request starts) and,
    ``GRACE`` seconds later, shuts the sockets, so that a blocking read returns. Within the grace a talking
    server's stream ends at its next chunk instead: llama-cpp-python's server hangs when a stream is dropped
    before its first chunk.
    """

    def __init__(self) -> None:
        self.done = self._ended = self._shut = False
        self._socks: list[socket.socket] = []

    def __enter__(self) -> Abort:
        self._token = _ABORT.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _ABORT.reset(self._token)
        self._ended = True

    def __call__(self) -> None:
        if not self.done and not self._ended:
            threading.Timer(GRACE, self._shut_all).start()
        self.done = True

    def _shut_all(self) -> None:
        self._shut = True
        for sock in self._socks:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    def trace(self, event: str, info: dict) -> None:
        """httpcore's ``trace`` hook: keeps each new connection's socket (shut at once after the grace)."""
        if event == "connection.connect_tcp.complete":
            self._socks.append(info["return_value"].get_extra_info("socket"))
            if self._shut:
                self._shut_all()


def _json(body: bytes, url: str) -> dict:
    """A JSON object the server sent; a ``ConfigError`` naming the server for anything else."""
    try:
        value = json.loads(body)
    except ValueError:
        start = body[:120].decode("utf-8", errors="replace").strip().replace("\n", " ")
        raise ConfigError(f"{url}: the server did not answer with JSON (it sent {start!r})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{url}: the server answered {type(value).__name__} JSON, not an object")
    return value


def _first_choice(event: dict, url: str) -> dict:
    """``event["choices"][0]``; a ``ConfigError`` naming the server when the answer has none."""
    choices = event.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ConfigError(f"{url}: the answer has no choices (not an OpenAI-compatible completion: {event!r:.120})")
    return choices[0]


class _Endpoint(Backend):
    """What both OpenAI-compatible backends share: the ``/v1`` URL, the served model, requests, payloads."""

    def __init__(self, endpoint: str, model: str | None = None, seed: int = 0, timeout: float = 600) -> None:
        super().__init__(seed)
        base = endpoint.rstrip("/")
        self.base = base if base.endswith("/v1") else base + "/v1"
        self.timeout = timeout
        # a connection per request, so that an Abort sees each one's socket
        self.http = httpx2.Client(timeout=timeout, limits=httpx2.Limits(max_keepalive_connections=0))
        self.model = model or self._first_model()

    def _request(self, path: str, payload: dict | None = None) -> Iterator[dict]:
        """POST ``payload`` (GET when None); yields the JSON body, or each event of a stream."""
        url = self.base + path
        abort = _ABORT.get()
        if abort is not None and abort.done:
            raise ConfigError(f"{url}: aborted")
        extensions = {"trace": abort.trace} if abort is not None else None
        try:
            if not (payload or {}).get("stream"):
                resp = self.http.request("POST" if payload else "GET", url, json=payload, extensions=extensions)
                yield _json(self._checked(resp, url).read(), url)
                return
            with self.http.sse(url, method="POST", json=payload, extensions=extensions) as events:
                self._checked(events.response, url)
                for event in events:
                    if event.data == "[DONE]":
                        return
                    yield _json(event.data.encode(), url)
            raise ConfigError(f"{url}: the stream ended without [DONE] (the server failed mid-stream)")
        except httpx2.TimeoutException:
            raise ConfigError(f"{url}: no answer within {self.timeout:g} s (the server hangs)") from None
        except httpx2.ConnectError as e:
            raise ConfigError(f"{url}: cannot reach the endpoint ({e})") from None
        except httpx2.TransportError as e:
            raise ConfigError(f"{url}: the connection failed ({e})") from None

    @staticmethod
    def _checked(resp: httpx2.Response, url: str) -> httpx2.Response:
        """``resp``, or a ``ConfigError`` with its status and the start of its body."""
        if resp.is_error:
            detail = resp.read().decode("utf-8", errors="replace").strip().replace("\n", " ")[:300]
            raise ConfigError(f"{url}: HTTP {resp.status_code}: {detail}")
        return resp

    def _finish(self, path: str, finish: str | None) -> str:
        """The answer's finish reason; an answer without one was cut off by the server, which is an error."""
        if finish is None:
            raise ConfigError(
                f"{self.base + path}: the answer ended without a finish_reason (the server cut it off; "
                "llama-cpp-python's server does so to a stream when another request arrives)"
            )
        return finish

    def _first_model(self) -> str | None:
        try:
            (listing,) = self._request("/models")
            return listing["data"][0]["id"]
        except (ConfigError, KeyError, IndexError, ValueError):
            return None

    def _payload(self, max_tokens: int, sampling: Sampling, stream: bool) -> dict:
        payload = {
            "max_tokens": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": sampling.seed,
        }
        if self.model:
            payload["model"] = self.model
        if sampling.logit_bias:
            payload["logit_bias"] = {str(int(t)): float(b) for t, b in sampling.logit_bias.items()}
        if stream:
            payload["stream"] = True
        return payload

    def close(self) -> None:
        self.http.close()


class OpenAIBackend(_Endpoint):
    """An OpenAI-compatible server's ``/v1/completions`` fed a raw prompt rendered with ``vocab``."""

    def __init__(
        self, endpoint: str, vocab: Vocab, model: str | None = None, seed: int = 0, timeout: float = 600
    ) -> None:
        """Talk to ``endpoint``.

        Args:
            endpoint: the server's URL, with or without ``/v1``.
            vocab: the served model's tokenizer: it renders the prompt and counts tokens.
            model: the served model's name (default: the first one the server lists).
            seed: seed of the backend's own seed stream.
            timeout: seconds to wait to connect and for each read of an answer.
        """
        self.vocab = vocab
        super().__init__(endpoint, model, seed, timeout)

    def complete(
        self, prompt: str, max_tokens: int, stop: list[str], sampling: Sampling, on_text: OnText = None
    ) -> Completion:
        if max_tokens <= 0:  # servers read 0 as "unlimited"
            return Completion("", "length")
        if self.vocab.adds_bos and prompt.startswith(self.vocab.bos_text):
            prompt = prompt[len(self.vocab.bos_text) :]  # the server adds BOS itself
        payload = self._payload(max_tokens, sampling, on_text is not None)
        payload.update(prompt=prompt, stop=stop or None)
        sink = TextSink([], on_text)
        finish, tokens = None, -1
        with contextlib.closing(self._request("/completions", payload)) as events:  # closed when on_text raises
            for event in events:
                tokens = (event.get("usage") or {}).get("completion_tokens", tokens)
                choice = _first_choice(event, self.base + "/completions")
                sink.add(choice.get("text") or "")
                finish = choice.get("finish_reason") or finish
        return Completion(sink.close(), self._finish("/completions", finish), tokens)

    def close(self) -> None:
        super().close()
        self.vocab.close()


class OpenAIChatBackend(_Endpoint):
    """An OpenAI-compatible server's ``/v1/chat/completions``: its own template, token counts unknown (-1)."""

    chat_only = True

    def chat(self, messages: Messages, max_tokens: int, sampling: Sampling, on_text: OnText = None) -> Completion:
        payload = self._payload(max_tokens, sampling, on_text is not None)
        payload["messages"] = messages
        sink = TextSink([], on_text)
        finish, tokens, reasoning = None, -1, False
        with contextlib.closing(self._request("/chat/completions", payload)) as events:
            for event in events:
                tokens = (event.get("usage") or {}).get("completion_tokens", tokens)
                if not event.get("choices"):
                    continue
                choice = _first_choice(event, self.base + "/chat/completions")
                part = choice.get("delta") or choice.get("message") or {}
                thought = part.get("reasoning_content") or part.get("reasoning") or ""
                reasoning = reasoning or bool(thought)
                sink.add(thought)
                content = part.get("content") or ""
                if content and reasoning and THINK_CLOSE not in sink.text:
                    sink.add(THINK_CLOSE)
                sink.add(content)
                finish = choice.get("finish_reason") or finish
        return Completion(sink.close(), self._finish("/chat/completions", finish), tokens)

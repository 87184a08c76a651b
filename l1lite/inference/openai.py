"""The OpenAI-compatible backends: llama.cpp's server, Ollama's ``/v1``, vLLM, over HTTP (urllib).

``OpenAIBackend`` feeds ``/v1/completions`` a prompt rendered locally with a tokenizer, which also
counts tokens, so every enforcement works. ``OpenAIChatBackend`` (no tokenizer) declares itself
chat-only: ``/v1/chat/completions`` with the server's template, no enforcement, no token counts.
A request is streamed only when ``on_text`` listens; an answer without a ``finish_reason`` is an error.

Imports the backend interface, the value types and l1lite.core.r1. Must not import another backend, the
budget algorithm or the CLI.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

from l1lite.core.config import ConfigError
from l1lite.core.r1 import THINK_CLOSE
from l1lite.inference.base import Backend, Messages, OnText, TextSink, Vocab
from l1lite.inference.types import Completion, Sampling


class _Endpoint(Backend):
    """What both OpenAI-compatible backends share: the ``/v1`` URL, the served model, requests, payloads."""

    def __init__(self, endpoint: str, model: str | None = None, seed: int = 0, timeout: float = 600) -> None:
        super().__init__(seed)
        base = endpoint.rstrip("/")
        self.base = base if base.endswith("/v1") else base + "/v1"
        self.timeout = timeout
        self.model = model or self._first_model()

    def _request(self, path: str, payload: dict | None = None) -> Iterator[dict]:
        """POST ``payload`` (GET when None); yields the JSON body, or each event of a stream."""
        url = self.base + path
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                if not (payload or {}).get("stream"):
                    yield json.loads(resp.read())
                    return
                for raw in resp:
                    line = raw.decode("utf-8").strip()
                    if not line.startswith("data:"):
                        continue
                    body = line[5:].strip()
                    if body == "[DONE]":
                        return
                    yield json.loads(body)
                raise ConfigError(f"{url}: the stream ended without [DONE] (the server failed mid-stream)")
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", errors="replace").strip().replace("\n", " ")[:300]
            raise ConfigError(f"{url}: HTTP {e.code}: {detail}") from None
        except urllib.error.URLError as e:
            raise ConfigError(f"{url}: cannot reach the endpoint ({e.reason})") from None
        except TimeoutError:
            raise ConfigError(f"{url}: no answer within {self.timeout:g} s (the server hangs)") from None

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
            timeout: seconds to wait for each request.
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
        for event in self._request("/completions", payload):
            tokens = (event.get("usage") or {}).get("completion_tokens", tokens)
            choice = event["choices"][0]
            sink.add(choice.get("text") or "")
            finish = choice.get("finish_reason") or finish
        return Completion(sink.close(), self._finish("/completions", finish), tokens)

    def close(self) -> None:
        self.vocab.close()


class OpenAIChatBackend(_Endpoint):
    """An OpenAI-compatible server's ``/v1/chat/completions``: its own template, token counts unknown (-1)."""

    chat_only = True

    def chat(self, messages: Messages, max_tokens: int, sampling: Sampling, on_text: OnText = None) -> Completion:
        payload = self._payload(max_tokens, sampling, on_text is not None)
        payload["messages"] = messages
        sink = TextSink([], on_text)
        finish, tokens, reasoning = None, -1, False
        for event in self._request("/chat/completions", payload):
            tokens = (event.get("usage") or {}).get("completion_tokens", tokens)
            if not event.get("choices"):
                continue
            choice = event["choices"][0]
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

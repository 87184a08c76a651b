"""The vLLM backend: an HF model folder (optionally with a LoRA adapter) in an in-process vLLM engine.

Every ``complete`` call becomes a request of one continuous batch: calls made at once from several threads (the
eval's workers, one per sample) are generated together, whatever their enforcement phase, so cap and s1 forcing
batch as well as the plain prompt. Stop strings, per-request seeds and the token cap are vLLM's own. A row depends
on its prompt and seed only, not on what it was batched with.

Imports the backend interface, the value types and :mod:`l1lite.core.vllm` (the engine); vLLM inside functions.
Must not import another backend, the budget algorithm or the CLI.
"""

from __future__ import annotations

import itertools
import queue
import threading
from concurrent import futures
from concurrent.futures import Future
from typing import Any

from l1lite.core import vllm as engines
from l1lite.core.config import ConfigError
from l1lite.inference.base import Backend, HFVocab, OnText
from l1lite.inference.types import Completion, Sampling


class _LockedVocab(HFVocab):
    """An HF tokenizer shared by the worker threads (a fast tokenizer must not be entered twice at once)."""

    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer)
        self.lock = threading.Lock()

    def render(self, messages: list[dict[str, str]]) -> str:
        with self.lock:
            return super().render(messages)

    def count(self, text: str) -> int:
        with self.lock:
            return super().count(text)

    def ids(self, text: str) -> list[int]:
        with self.lock:
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]


class VLLMBackend(Backend):
    """An HF model folder in vLLM, shared by threads: their ``complete`` calls are batched continuously."""

    def __init__(self, path: str, adapter: str | None = None, seed: int = 0, n_ctx: int = 8192) -> None:
        """Start the engine.

        Args:
            path: the HF model folder.
            adapter: a PEFT LoRA adapter folder, applied to every request (vLLM's own LoRA; the base is unchanged).
            seed: seed of the backend's own seed stream (for calls that give none).
            n_ctx: the longest prompt plus completion, in tokens.
        """
        super().__init__(seed)
        rank = engines.adapter_rank(adapter) if adapter else 1
        self.engine = engines.Engine(path, max_lora_rank=rank, max_model_len=n_ctx, seed=seed)
        self.adapter = adapter
        self.vocab = _LockedVocab(self.engine.tokenizer)
        self._max_len = n_ctx
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._ids = itertools.count()
        self._loop = threading.Thread(target=self._serve, name="vllm-batch", daemon=True)
        self._loop.start()

    def complete(
        self, prompt: str, max_tokens: int, stop: list[str], sampling: Sampling, on_text: OnText = None
    ) -> Completion:
        if max_tokens <= 0:
            return Completion("", "length")
        params = self.engine.params(
            max_tokens, sampling.temperature, sampling.top_p, sampling.seed, stop=stop, logit_bias=sampling.logit_bias
        )
        done: Future = Future()
        self._inbox.put((self.vocab.ids(prompt), params, done))
        while True:
            try:
                out = done.result(timeout=1.0).outputs[0]
                break
            except futures.TimeoutError:
                if not self._loop.is_alive():
                    raise ConfigError("the vLLM engine has stopped (see the error above)") from None
        text = out.text.replace("\ufffd", "")  # incomplete UTF-8 dropped, as llama.cpp does
        if on_text is not None:
            on_text(text)
        return Completion(text, "length" if out.finish_reason == "length" else "stop", len(out.token_ids))

    def _serve(self) -> None:
        """The engine's loop: admit every waiting request, step, hand each finished output to its caller."""
        waiting: dict[str, Future] = {}
        try:
            while True:
                busy = self.engine.busy()
                try:
                    items = [self._inbox.get(block=not busy)]
                except queue.Empty:
                    items = []
                while not self._inbox.empty():
                    items.append(self._inbox.get())
                for item in items:
                    if item is None:
                        return
                    ids, params, done = item
                    rid = str(next(self._ids))
                    waiting[rid] = done
                    self.engine.add(rid, ids, params, self.adapter)
                for out in self.engine.step():
                    if out.finished:
                        waiting.pop(out.request_id).set_result(out)
        except BaseException as e:  # the engine failed: its callers get the error, later ones see the loop gone
            for done in waiting.values():
                done.set_exception(e)
            raise

    def n_ctx(self) -> int:
        return self._max_len

    def close(self) -> None:
        """Stop the loop and free the engine."""
        self._inbox.put(None)
        self._loop.join()
        self.engine.close()

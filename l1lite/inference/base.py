"""The backend interface, and what every backend shares: the stop-string text sink and the vocabularies.

A backend either completes a raw prompt (``complete``), rendering the chat template and counting tokens
with its vocabulary, or declares ``chat_only`` and only answers chat messages (``chat``), with the
server's template and no token counts. ``generate`` branches on that declaration.

Imports l1lite.core.config, l1lite.core.r1 and the value types; l1lite.core.models (the GGUF check), llama_cpp
and transformers only inside functions.
Must not import a concrete backend, the budget algorithm or the CLI.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

from l1lite.core.config import ConfigError
from l1lite.core.r1 import count_tokens, render
from l1lite.inference.types import Completion, Sampling

Messages = list[dict[str, str]]
OnText = Callable[[str], None] | None


def partial_marker(text: str, markers: list[str]) -> int:
    """The length of the longest end of ``text`` that begins one of ``markers`` (what a stream must hold back)."""
    return max((k for s in markers for k in range(1, len(s)) if text.endswith(s[:k])), default=0)


class TextSink:
    """Collects decoded pieces, cuts at the first stop string, streams only text that cannot start one."""

    def __init__(self, stop: list[str], on_text: OnText) -> None:
        self.stop = [s for s in stop if s]
        self.longest = max((len(s) for s in self.stop), default=0)
        self.on_text = on_text
        self.text = ""
        self.sent = 0
        self.stopped = False

    def add(self, piece: str) -> bool:
        """Append ``piece``; True once a stop string has been reached."""
        if self.stopped or not piece:
            return self.stopped
        start = max(0, len(self.text) - self.longest + 1)
        self.text += piece
        hits = [i for s in self.stop if (i := self.text.find(s, start)) >= 0]
        if hits:
            self.text = self.text[: min(hits)]
            self.stopped = True
            self._emit(len(self.text))
            return True
        self._emit(len(self.text) - partial_marker(self.text, self.stop))
        return False

    def _emit(self, upto: int) -> None:
        if upto > self.sent and self.on_text is not None:
            self.on_text(self.text[self.sent : upto])
        self.sent = max(self.sent, upto)

    def close(self) -> str:
        """Stream what was held back; the final text."""
        self._emit(len(self.text))
        return self.text


# ---------------------------------------------------------------- vocabularies: chat template and counting


class Vocab(Protocol):
    """A tokenizer as backends use it: the chat template, token counts, and the BOS it adds."""

    bos_text: str
    adds_bos: bool

    def render(self, messages: Messages) -> str: ...

    def count(self, text: str) -> int: ...

    def close(self) -> None: ...


class HFVocab:
    """An HF tokenizer: its chat template and token counts."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.bos_text = tokenizer.bos_token or ""
        ids = tokenizer("a")["input_ids"]
        self.adds_bos = bool(ids) and ids[0] == tokenizer.bos_token_id

    def render(self, messages: Messages) -> str:
        return render(self.tokenizer, messages)

    def count(self, text: str) -> int:
        return count_tokens(self.tokenizer, text)

    def close(self) -> None:
        """Nothing to free."""


class GGUFVocab:
    """A GGUF's vocabulary through llama.cpp: its embedded chat template and token counts."""

    def __init__(self, llm: Any, path: str) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ConfigError(f"{path}: the GGUF has no tokenizer.chat_template")
        self.llm = llm
        self.bos_text = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", errors="ignore")
        eos_text = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", errors="ignore")
        self.formatter = Jinja2ChatFormatter(template, eos_token=eos_text, bos_token=self.bos_text)
        self.adds_bos = llm.tokenize(b"a", add_bos=True)[:1] == [llm.token_bos()]

    def render(self, messages: Messages) -> str:
        return self.formatter(messages=messages).prompt

    def count(self, text: str) -> int:
        return len(self.tokenize(text))

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) if text else []

    def close(self) -> None:
        """Free the llama.cpp vocabulary."""
        self.llm.close()


def load_vocab(path: str) -> Vocab:
    """An HF tokenizer folder or a ``.gguf`` file (vocabulary only)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"tokenizer not found: {path}")
    if p.suffix == ".gguf":
        from llama_cpp import Llama

        from l1lite.core.models import check_gguf

        check_gguf(p, "--tokenizer")
        return GGUFVocab(Llama(str(p), vocab_only=True, verbose=False), path)
    from transformers import AutoTokenizer

    return HFVocab(AutoTokenizer.from_pretrained(str(p)))


# ---------------------------------------------------------------- the backend interface


class Backend:
    """Raw-prompt completion with the model's chat template and token counter, or chat only.

    A backend with ``chat_only = False`` (the default) has a ``vocab`` and implements ``complete``; one
    with ``chat_only = True`` implements ``chat`` instead, and counts no tokens. One that declares
    ``batched = True`` also implements ``complete_batch``.
    """

    chat_only: ClassVar[bool] = False
    batched: ClassVar[bool] = False
    vocab: Vocab

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def next_seed(self) -> int:
        """A fresh seed from the backend's own stream (used when a call gives none)."""
        return self._rng.randrange(2**31)

    def render(self, messages: Messages) -> str:
        """The prompt text through the model's chat template, ending with the generation prompt."""
        return self.vocab.render(messages)

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` with the model's tokenizer (special tokens parsed, none added)."""
        return self.vocab.count(text)

    def complete(
        self, prompt: str, max_tokens: int, stop: list[str], sampling: Sampling, on_text: OnText = None
    ) -> Completion:
        """Continue the raw ``prompt`` (it already holds the BOS text).

        Args:
            prompt: the rendered prompt, and any text generated so far.
            max_tokens: at most this many new ids.
            stop: strings that end the completion (not included in its text).
            sampling: how tokens are drawn; its ``seed`` is set.
            on_text: receives the text as it is generated.
        """
        raise NotImplementedError

    def complete_batch(self, prompts: list[str], max_tokens: int, sampling: Sampling) -> list[Completion]:
        """Continue each raw prompt in one batched call; each row ends at its own end of sequence or ``max_tokens``.

        No stop strings. One random stream draws for every row, seeded by ``sampling.seed`` (set): a row depends
        on the whole batch, not only on its prompt and the seed.
        """
        raise NotImplementedError

    def chat(self, messages: Messages, max_tokens: int, sampling: Sampling, on_text: OnText = None) -> Completion:
        """A chat-only backend's answer to ``messages``, ``</think>`` between reasoning and content.

        Args:
            messages: the conversation, ending with the user's turn.
            max_tokens: at most this many new tokens.
            sampling: how tokens are drawn; its ``seed`` is set.
            on_text: receives the text as it is generated.
        """
        raise NotImplementedError

    def n_ctx(self) -> int | None:
        """The context size in tokens (prompt and generated text), where the backend has a fixed one."""
        return None

    def reset(self) -> None:
        """Forget cached state: the next prompt is processed from scratch (called at each ``generate``)."""

    def close(self) -> None:
        """Free the model."""

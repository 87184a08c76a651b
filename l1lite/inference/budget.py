"""Generation under a thinking budget: the budget prompt, then enforcement ``none`` / ``cap`` / ``forcing``.

``cap`` generates the thinking with at most N tokens, stopping at ``</think>``; at N it appends an
optional message and ``</think>`` and continues with the answer from prompt + thinking. ``forcing``
(s1 budget forcing) also replaces an early end of thinking by "Wait", at most ``wait`` times while the
thinking is shorter than ``min_tokens``, then caps at N. A chat-only backend gets the budget prompt only.

Token counts are re-tokenizations of the final thinking / answer / whole text with the model's
tokenizer (special tokens parsed, none added). For ordinary text this is the number of generated
ids; it is also what the cap is enforced against, so ``thinking_tokens <= budget`` always holds
(a rare re-tokenization that comes out longer than the generated ids is trimmed at the end).
Every backend drops invalid UTF-8 byte sequences from the output, as llama.cpp does.
``generate_batch`` answers several questions in one batched call of a backend that declares ``batched``
(``enforce="none"`` only), counted the same way. A backend is asked to stream (``on_text``) only when a caller
listens to the text.

Works on the ``Backend`` interface only: must not import a concrete backend or the CLI.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from l1lite.core import prompts
from l1lite.core.config import ConfigError, PromptConfig
from l1lite.core.grading import extract_boxed
from l1lite.core.r1 import THINK_CLOSE, split_thinking
from l1lite.inference.base import Backend, Messages, OnText
from l1lite.inference.types import Budget, GenerationResult, PromptTooLong, Sampling

log = logging.getLogger(__name__)

STREAM_LAG = 8  # thinking pieces held back while streaming under enforcement, so a final trim never takes text back


class _LaggedStream:
    """Streams thinking ``STREAM_LAG`` pieces late; ``finish`` sends the rest of the (possibly trimmed) final text."""

    def __init__(self, on_text: OnText) -> None:
        self.on_text = on_text
        self.pending: list[str] = []
        self.sent: list[str] = []

    def push(self, piece: str) -> None:
        if self.on_text is None or not piece:
            return
        self.pending.append(piece)
        if len(self.pending) > STREAM_LAG:
            first = self.pending.pop(0)
            self.sent.append(first)
            self.on_text(first)

    def finish(self, final: str) -> None:
        if self.on_text is None:
            return
        sent = "".join(self.sent)
        if final.startswith(sent):
            if len(final) > len(sent):
                self.on_text(final[len(sent) :])
        else:
            log.warning("streamed thinking was trimmed to the budget after it was shown; the result has the final text")


def _fit(backend: Backend, text: str, suffix: str, limit: int) -> str:
    """Longest prefix of ``text`` such that ``prefix + suffix`` is at most ``limit`` tokens."""
    if backend.count_tokens(text + suffix) <= limit:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if backend.count_tokens(text[:mid] + suffix) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


def _think(
    backend: Backend, prompt: str, limit: int, budget: Budget, sampling: Sampling, on_text: OnText
) -> tuple[str, int, int]:
    """Thinking of at most ``limit`` tokens, "Wait" replacing early ends below the minimum: (text, waits, phases)."""
    min_tokens = budget.budget if budget.min_tokens is None else budget.min_tokens
    wait = budget.wait if budget.enforce == "forcing" else 0
    cap_message = budget.cap_message
    stream = _LaggedStream(on_text)
    listen = stream.push if on_text is not None else None  # no listener: plain requests, nothing streamed
    room_total = limit - (backend.count_tokens(cap_message) if cap_message else 0)
    thinking, waits, phase, capped = "", 0, 0, True
    while (room := room_total - backend.count_tokens(thinking)) > 0:
        phase_sampling = replace(sampling, seed=sampling.seed + phase)
        part = backend.complete(prompt + thinking, room, [THINK_CLOSE], phase_sampling, listen)
        phase += 1
        thinking += part.text
        if part.finish_reason == "length":  # fewer tokens than generated ids after re-tokenization: fill up
            if not part.text:
                break
            continue
        if waits < wait and backend.count_tokens(thinking) < min_tokens:
            thinking += budget.wait_text
            stream.push(budget.wait_text)
            waits += 1
            continue
        capped = False
        break
    suffix = cap_message if capped else ""
    thinking = _fit(backend, thinking, suffix, limit) + suffix
    stream.finish(thinking)
    return thinking, waits, phase


def _result(
    backend: Backend, text: str, finish: str, budget: Budget, waits: int = 0, tokens: int = -1
) -> GenerationResult:
    """The result of ``text``; a chat-only backend counts no tokens (-1), its total is the server's ``tokens``."""
    thinking, answer, _ = split_thinking(text)
    count = (lambda _: -1) if backend.chat_only else backend.count_tokens
    total = tokens if backend.chat_only else count(text)
    return GenerationResult(
        text=text,
        thinking=thinking,
        answer=answer,
        boxed=extract_boxed(answer),
        thinking_tokens=count(thinking),
        answer_tokens=count(answer),
        total_tokens=total,
        finish_reason=finish,
        budget=budget.budget,
        mode=budget.mode,
        enforce=budget.enforce,
        waits=waits,
    )


def cut(backend: Backend, res: GenerationResult, limit: int) -> GenerationResult:
    """``res`` cut to its longest prefix of at most ``limit`` counted tokens (a hard cap in counted tokens: a text
    cut at ``limit`` ids can re-tokenize longer, e.g. ids merged where the tokenizer splits); ``res`` if it fits.

    Args:
        backend: the model that generated ``res`` (not chat-only: it counts the tokens).
        res: a generation.
        limit: the most counted tokens in all.
    """
    if res.total_tokens <= limit:
        return res
    budget = Budget(res.budget, res.mode, res.enforce, max_tokens=limit)
    return _result(backend, _fit(backend, res.text, "", limit), res.finish_reason, budget, res.waits)


def check_room(budget: Budget, room: int, what: str) -> None:
    """Refuse an exact budget that can never be met in ``room`` tokens; warn about such a max budget.

    An exact budget ("Think for N tokens") asks for N tokens of thinking: with less room the request cannot be
    met, so it is a :class:`ConfigError` with the numbers. A max budget ("for maximum N") is only a bound the
    model may meet with fewer tokens, so a bound beyond the room is a warning (a loose bound may be wanted).

    Args:
        budget: the request; nothing is checked without a budget.
        room: tokens there is room to generate.
        what: where the room comes from, with its numbers, for the message (e.g. ``--max-tokens 64``).
    """
    if budget.budget is None or budget.budget <= room:
        return
    message = f"budget {budget.budget} is more than {what} allows ({room} tokens)"
    if budget.mode == "exact":
        raise ConfigError(f"{message}: an exact budget can never be met")
    log.warning("%s: the max budget is only a bound here", message)


def generate(
    backend: Backend,
    question: str,
    budget: Budget,
    sampling: Sampling,
    *,
    prompt_cfg: PromptConfig | None = None,
    history: Messages | None = None,
    on_text: OnText = None,
) -> GenerationResult:
    """Answer ``question`` under ``budget``: its budget prompt, then its enforcement.

    Args:
        backend: the model (see ``load_backend``); a chat-only one allows ``enforce="none"`` only.
        question: the user's question.
        budget: the thinking budget (``budget=None``: no budget sentence), its enforcement and ``max_tokens``.
        sampling: temperature, top-p, logit bias and seed (None: the backend's next seed; each later
            generation phase adds one).
        prompt_cfg: the budget sentence's templates (default: ``PromptConfig()``).
        history: earlier chat messages, before the question.
        on_text: receives the text as it is generated (under enforcement, the thinking arrives a few
            tokens late).
    """
    asked = prompts.messages(question, budget.budget, budget.mode, prompt_cfg or PromptConfig())
    messages = list(history or []) + asked
    seed = backend.next_seed() if sampling.seed is None else sampling.seed
    sampling = replace(sampling, seed=seed)
    if backend.chat_only:  # the budget prompt through the server's template; no enforcement, no token counts
        if budget.enforce != "none":
            raise ConfigError(
                f"--enforce {budget.enforce} counts tokens locally: give --tokenizer (HF folder or .gguf)"
            )
        done = backend.chat(messages, budget.max_tokens, sampling, on_text)
        return _result(backend, done.text, done.finish_reason, budget, tokens=done.tokens)
    prompt = backend.render(messages)
    if (n_ctx := backend.n_ctx()) is not None:
        used = backend.count_tokens(prompt)
        if used >= n_ctx:
            raise PromptTooLong(f"prompt of {used} tokens does not fit the context of {n_ctx} (--n-ctx)")
        try:
            check_room(budget, n_ctx - used, f"the context of {n_ctx} (--n-ctx) after a prompt of {used} tokens")
        except ConfigError as e:
            raise PromptTooLong(str(e)) from None
    backend.reset()
    if budget.enforce == "none":
        done = backend.complete(prompt, budget.max_tokens, [], sampling, on_text)
        return _result(backend, done.text, done.finish_reason, budget)
    limit = min(budget.budget, budget.max_tokens - backend.count_tokens(THINK_CLOSE))
    if budget.cap_message and backend.count_tokens(budget.cap_message) >= limit:
        raise ConfigError(f"--cap-message is longer than the budget of {limit} tokens")
    thinking, waits, phases = _think(backend, prompt, limit, budget, sampling, on_text)
    head = thinking + THINK_CLOSE
    if on_text is not None:
        on_text(THINK_CLOSE)
    room = budget.max_tokens - backend.count_tokens(head)
    done = backend.complete(prompt + head, room, [], replace(sampling, seed=seed + phases), on_text)
    return _result(backend, head + done.text, done.finish_reason, budget, waits)


def generate_batch(
    backend: Backend,
    questions: list[str],
    budget: Budget,
    sampling: Sampling,
    *,
    prompt_cfg: PromptConfig | None = None,
) -> list[GenerationResult]:
    """Answer each of ``questions`` (repeats allowed: several samples) under ``budget``'s prompt in one batched call.

    One random stream draws for the whole batch, seeded by ``sampling.seed``: a result depends on the batch it
    was generated in, so results are reproducible for the same batches only.

    Args:
        backend: a backend that declares ``batched`` (see ``Backend.complete_batch``).
        questions: the users' questions, one result each, in order.
        budget: the thinking budget (``budget=None``: no budget sentence) and ``max_tokens``; ``enforce`` must be
            ``"none"`` (no stop strings but the end of sequence).
        sampling: temperature, top-p, logit bias and the batch's seed (None: the backend's next seed).
        prompt_cfg: the budget sentence's templates (default: ``PromptConfig()``).
    """
    if not backend.batched or budget.enforce != "none":
        raise ConfigError(f"batched generation needs a batched backend and enforce none, got {budget.enforce}")
    cfg = prompt_cfg or PromptConfig()
    rendered = [backend.render(prompts.messages(q, budget.budget, budget.mode, cfg)) for q in questions]
    seed = backend.next_seed() if sampling.seed is None else sampling.seed
    backend.reset()
    done = backend.complete_batch(rendered, budget.max_tokens, replace(sampling, seed=seed))
    return [_result(backend, d.text, d.finish_reason, budget) for d in done]

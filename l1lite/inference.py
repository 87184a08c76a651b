"""Generation with a thinking budget: the budget prompt, optional enforcement, three backends.

Backends: llama.cpp through llama-cpp-python (``.gguf``), transformers (HF folder, optional PEFT
adapter) and any OpenAI-compatible server's ``/v1/completions`` fed a prompt rendered locally
(llama.cpp's server, Ollama's ``/v1``, vLLM).

Enforcement: ``cap`` generates the thinking with at most N tokens, stopping at ``</think>``; at N it
appends an optional message and ``</think>`` and continues with the answer from prompt + thinking.
``forcing`` (s1 budget forcing) also replaces an early end of thinking by "Wait", at most ``wait``
times while the thinking is shorter than ``min_tokens``, then caps at N.

Token counts are re-tokenizations of the final thinking / answer / whole text with the model's
tokenizer (special tokens parsed, none added). For ordinary text this is the number of generated
ids; it is also what the cap is enforced against, so ``thinking_tokens <= budget`` always holds
(a rare re-tokenization that comes out longer than the generated ids is trimmed at the end).
Every backend drops invalid UTF-8 byte sequences from the output, as llama.cpp does.
"""

from __future__ import annotations

import bisect
import codecs
import dataclasses
import json
import logging
import os
import random
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from l1lite import prompts
from l1lite.config import ConfigError, PromptConfig
from l1lite.grading import extract_boxed
from l1lite.r1 import THINK_CLOSE, split_thinking

log = logging.getLogger(__name__)

ENFORCE = ("none", "cap", "forcing")
WAIT_TEXT = "Wait"
CAP_MESSAGE_EXAMPLE = (
    "\n\nConsidering the limited time, I have to give the solution based on the thinking directly now.\n"
)
STREAM_LAG = 8  # thinking pieces held back while streaming under enforcement, so a final trim never takes text back

Messages = list[dict[str, str]]
OnText = Callable[[str], None] | None


@dataclass
class GenerationResult:
    """One generation; see INFERENCE_API.md for the meaning of each field."""

    text: str
    thinking: str
    answer: str
    boxed: str | None
    thinking_tokens: int
    answer_tokens: int
    total_tokens: int
    finish_reason: str
    budget: int | None
    mode: str
    enforce: str
    waits: int = 0

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready)."""
        return dataclasses.asdict(self)


@dataclass
class Completion:
    """What a backend generated from a raw prompt."""

    text: str
    finish_reason: str  # "stop": end of sequence or a stop string (not included); "length": max_tokens reached
    tokens: int = -1  # generated ids, where the backend tells


class _TextSink:
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
        held = max((k for s in self.stop for k in range(1, len(s)) if self.text.endswith(s[:k])), default=0)
        self._emit(len(self.text) - held)
        return False

    def _emit(self, upto: int) -> None:
        if upto > self.sent and self.on_text is not None:
            self.on_text(self.text[self.sent : upto])
        self.sent = max(self.sent, upto)

    def close(self) -> str:
        """Stream what was held back; the final text."""
        self._emit(len(self.text))
        return self.text


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


# ---------------------------------------------------------------- tokenizers: chat template and counting


class _HFVocab:
    """An HF tokenizer: its chat template and token counts."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.bos_text = tokenizer.bos_token or ""
        ids = tokenizer("a")["input_ids"]
        self.adds_bos = bool(ids) and ids[0] == tokenizer.bos_token_id

    def render(self, messages: Messages) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


class _GGUFVocab:
    """A GGUF's vocabulary through llama.cpp: its embedded chat template and token counts."""

    def __init__(self, llm, path: str) -> None:
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


def _load_vocab(path: str):
    """An HF tokenizer folder or a ``.gguf`` file (vocabulary only)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"tokenizer not found: {path}")
    if p.suffix == ".gguf":
        from llama_cpp import Llama

        return _GGUFVocab(Llama(str(p), vocab_only=True, verbose=False), path)
    from transformers import AutoTokenizer

    return _HFVocab(AutoTokenizer.from_pretrained(str(p)))


# ---------------------------------------------------------------- backends


class Backend:
    """Raw-prompt completion plus the model's chat template and token counter."""

    vocab: _HFVocab | _GGUFVocab | None

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
        self,
        prompt: str,
        max_tokens: int,
        stop: list[str],
        temperature: float,
        top_p: float,
        seed: int,
        logit_bias: dict[int, float] | None = None,
        on_text: OnText = None,
    ) -> Completion:
        """Continue the raw ``prompt`` (it already holds the BOS text)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget cached state: the next prompt is processed from scratch (called at each ``generate``)."""

    def close(self) -> None:
        """Free the model."""


class LlamaCppBackend(Backend):
    """A GGUF through llama-cpp-python, with a token-level loop.

    A prompt that extends the previous prompt reuses the ids of the text it shares with the previous
    prompt + completion (the model keeps its own tokenization and the KV cache matches); only the new
    text is tokenized. Any other prompt, and the first after ``reset``, is evaluated from scratch.
    """

    def __init__(self, path: str, n_ctx: int = 8192, seed: int = 0, n_threads: int | None = None) -> None:
        super().__init__(seed)
        from llama_cpp import Llama

        threads = {"n_threads": n_threads, "n_threads_batch": n_threads} if n_threads else {}
        self.llm = Llama(path, n_ctx=n_ctx, seed=seed, verbose=False, **threads)
        self.vocab = _GGUFVocab(self.llm, path)
        self._prompt: str | None = None  # the last prompt; None: start from scratch
        self._text = ""  # the last prompt + completion text
        self._ids: list[int] = []  # its ids
        self._marks: list[tuple[int, int]] = []  # (chars, ids) where text[:chars] is exactly ids[:ids]

    def _prompt_ids(self, prompt: str) -> list[int]:
        if self._prompt is not None and prompt.startswith(self._prompt):  # keep the shared ids and KV cache
            common = (
                len(self._text) if prompt.startswith(self._text) else len(os.path.commonprefix([prompt, self._text]))
            )
            i = bisect.bisect_right(self._marks, (common, len(self._ids)))  # marks are sorted
            chars, n = self._marks[i - 1] if i else (0, 0)
        else:
            self.llm.reset()
            chars, n = 0, 0
        ids = self._ids[:n] + self.vocab.tokenize(prompt[chars:])
        self._marks = [m for m in self._marks if m[1] <= n] + [(len(prompt), len(ids))]
        self._prompt, self._text, self._ids = prompt, prompt, ids
        return list(ids)

    def reset(self) -> None:
        self._prompt = None  # so that a seed gives the same text whatever came before

    def complete(self, prompt, max_tokens, stop, temperature, top_p, seed, logit_bias=None, on_text=None):
        import llama_cpp
        import numpy as np

        ids = self._prompt_ids(prompt)
        room = self.llm.n_ctx() - len(ids)
        if room <= 0:
            raise ConfigError(f"prompt of {len(ids)} tokens does not fit the context of {self.llm.n_ctx()} (--n-ctx)")
        max_tokens = min(max_tokens, room)
        processors = None
        if logit_bias:
            index = np.array(list(logit_bias), dtype=np.intc)
            delta = np.array(list(logit_bias.values()), dtype=np.single)

            def bias(_input_ids, scores):
                scores[index] += delta
                return scores

            processors = [bias]
        self.llm.set_seed(seed)
        sink = _TextSink(stop, on_text)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        vocab = self.llm._model.vocab
        finish, new = "length", []
        tokens = self.llm.generate(
            ids, top_k=0, top_p=top_p, min_p=0.0, temp=temperature, logits_processor=processors, reset=True
        )
        for token in tokens if max_tokens > 0 else ():
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            new.append(token)
            if sink.add(decoder.decode(self.llm.detokenize([token]))):
                finish = "stop"
                break
            if not decoder.getstate()[0]:  # no bytes pending: the text so far is exactly these ids
                self._marks.append((len(prompt) + len(sink.text), len(ids) + len(new)))
            if len(new) >= max_tokens:
                break
        sink.add(decoder.decode(b"", final=True))
        self._text, self._ids = prompt + sink.text, ids + new
        return Completion(sink.close(), finish, len(new))

    def close(self) -> None:
        self.llm.close()


class _StreamToSink:
    """transformers streamer: decodes the new ids so far and feeds the new text to a sink."""

    def __init__(self, tokenizer, sink: _TextSink) -> None:
        self.tokenizer = tokenizer
        self.sink = sink
        self.ids: list[int] = []
        self.text = ""
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:  # generate() first passes the prompt
            self.prompt_seen = True
            return
        self.ids.extend(value.reshape(-1).tolist())
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        text = text.replace("\ufffd", "")  # incomplete or invalid UTF-8, dropped like llama.cpp does
        if len(text) > len(self.text):
            self.sink.add(text[len(self.text) :])
            self.text = text

    def end(self) -> None:
        pass


class TransformersBackend(Backend):
    """An HF model folder with transformers, optionally with a PEFT LoRA adapter."""

    def __init__(self, path: str, adapter: str | None = None, seed: int = 0) -> None:
        super().__init__(seed)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = AutoModelForCausalLM.from_pretrained(path, dtype="auto").to(device)
        if adapter is not None:
            from peft import PeftModel

            if not Path(adapter, "adapter_config.json").is_file():
                raise ConfigError(f"--adapter {adapter}: no adapter_config.json there")
            model = PeftModel.from_pretrained(model, adapter)
        self.model = model.eval()
        self.vocab = _HFVocab(self.tokenizer)

    def complete(self, prompt, max_tokens, stop, temperature, top_p, seed, logit_bias=None, on_text=None):
        from transformers import StoppingCriteria, StoppingCriteriaList

        torch = self.torch
        sink = _TextSink(stop, on_text)
        if max_tokens <= 0:
            return Completion("", "length")
        ids = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        streamer = _StreamToSink(self.tokenizer, sink)

        class AtStop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), sink.stopped, dtype=torch.bool, device=input_ids.device)

        kwargs = {"do_sample": False}
        if temperature > 0:
            kwargs = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}
        if logit_bias:
            kwargs["sequence_bias"] = {(int(t),): float(b) for t, b in logit_bias.items()}
        pad = self.tokenizer.pad_token_id
        torch.manual_seed(seed)
        with torch.no_grad():
            out = self.model.generate(
                input_ids=ids.to(self.model.device),
                attention_mask=torch.ones_like(ids).to(self.model.device),
                max_new_tokens=max_tokens,
                streamer=streamer,
                stopping_criteria=StoppingCriteriaList([AtStop()]),
                pad_token_id=self.tokenizer.eos_token_id if pad is None else pad,
                **kwargs,
            )
        new = out[0, ids.shape[1] :].tolist()
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        finish = "stop" if sink.stopped or (new and new[-1] in eos) or len(new) < max_tokens else "length"
        return Completion(sink.close(), finish, len(new))


class OpenAIBackend(Backend):
    """An OpenAI-compatible server: ``/v1/completions`` with a locally rendered raw prompt.

    Without a tokenizer it falls back to ``/v1/chat/completions`` (server-side template, no
    enforcement, token counts unknown: -1).
    """

    def __init__(self, endpoint: str, vocab, model: str | None = None, seed: int = 0, timeout: float = 600) -> None:
        super().__init__(seed)
        base = endpoint.rstrip("/")
        self.base = base if base.endswith("/v1") else base + "/v1"
        self.vocab = vocab
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
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", errors="replace").strip().replace("\n", " ")[:300]
            raise ConfigError(f"{url}: HTTP {e.code}: {detail}") from None
        except urllib.error.URLError as e:
            raise ConfigError(f"{url}: cannot reach the endpoint ({e.reason})") from None

    def _first_model(self) -> str | None:
        try:
            (listing,) = self._request("/models")
            return listing["data"][0]["id"]
        except (ConfigError, KeyError, IndexError, ValueError):
            return None

    def _payload(self, max_tokens, temperature, top_p, seed, logit_bias, stream) -> dict:
        payload = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "seed": seed}
        if self.model:
            payload["model"] = self.model
        if logit_bias:
            payload["logit_bias"] = {str(int(t)): float(b) for t, b in logit_bias.items()}
        if stream:
            payload["stream"] = True
        return payload

    def complete(self, prompt, max_tokens, stop, temperature, top_p, seed, logit_bias=None, on_text=None):
        if max_tokens <= 0:  # servers read 0 as "unlimited"
            return Completion("", "length")
        if self.vocab.adds_bos and prompt.startswith(self.vocab.bos_text):
            prompt = prompt[len(self.vocab.bos_text) :]  # the server adds BOS itself
        payload = self._payload(max_tokens, temperature, top_p, seed, logit_bias, on_text is not None)
        payload.update(prompt=prompt, stop=stop or None)
        sink = _TextSink([], on_text)
        finish, tokens = "stop", -1
        for event in self._request("/completions", payload):
            tokens = (event.get("usage") or {}).get("completion_tokens", tokens)
            choice = event["choices"][0]
            sink.add(choice.get("text") or "")
            finish = choice.get("finish_reason") or finish
        return Completion(sink.close(), finish, tokens)

    def chat(self, messages: Messages, max_tokens, temperature, top_p, seed, logit_bias=None, on_text=None):
        """``/v1/chat/completions``: (text with ``</think>`` between reasoning and content, finish, tokens or -1)."""
        payload = self._payload(max_tokens, temperature, top_p, seed, logit_bias, on_text is not None)
        payload["messages"] = messages
        sink = _TextSink([], on_text)
        finish, tokens, reasoning = "stop", -1, False
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
        return sink.close(), finish, tokens

    def close(self) -> None:
        if isinstance(self.vocab, _GGUFVocab):
            self.vocab.llm.close()


def load_backend(
    model: str | None = None,
    adapter: str | None = None,
    endpoint: str | None = None,
    tokenizer: str | None = None,
    n_ctx: int = 8192,
    seed: int = 0,
    n_threads: int | None = None,
) -> Backend:
    """``model`` ``.gguf`` -> llama.cpp; a folder -> transformers (+ ``adapter``); ``endpoint`` -> OpenAI-compatible.

    With ``endpoint``, ``model`` names the served model (default: the first one the server lists) and
    ``tokenizer`` (HF folder or ``.gguf``) renders the prompt and counts tokens. ``n_threads``: llama.cpp
    threads (default: llama-cpp-python's choice).
    """
    if endpoint:
        if adapter:
            raise ConfigError("--adapter cannot be applied to an --endpoint (load it in the server)")
        vocab = _load_vocab(tokenizer) if tokenizer else None
        if vocab is None:
            log.warning(
                "no --tokenizer for %s: using /v1/chat/completions with the server's chat template; "
                "no budget enforcement and no token counts (-1)",
                endpoint,
            )
        return OpenAIBackend(endpoint, vocab, model=model, seed=seed)
    if not model:
        raise ConfigError("give --model (a .gguf file or an HF model folder) or --endpoint URL")
    path = Path(model)
    if not path.exists():
        raise ConfigError(f"model not found: {model}")
    if path.suffix == ".gguf":
        if adapter:
            raise ConfigError("--adapter works with HF model folders; merge and export it for GGUF (l1lite export)")
        return LlamaCppBackend(str(path), n_ctx=n_ctx, seed=seed, n_threads=n_threads)
    if not (path / "config.json").is_file():
        raise ConfigError(f"--model {model}: neither a .gguf file nor an HF model folder (no config.json)")
    return TransformersBackend(str(path), adapter=adapter, seed=seed)


# ---------------------------------------------------------------- generation with a budget


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
    backend: Backend,
    prompt: str,
    limit: int,
    min_tokens: int,
    wait: int,
    wait_text: str,
    cap_message: str,
    seed: int,
    sampling: dict,
    on_text: OnText,
) -> tuple[str, int, int]:
    """Thinking of at most ``limit`` tokens, "Wait" replacing early ends below ``min_tokens``: (text, waits, phases)."""
    stream = _LaggedStream(on_text)
    room_total = limit - (backend.count_tokens(cap_message) if cap_message else 0)
    thinking, waits, phase, capped = "", 0, 0, True
    while (room := room_total - backend.count_tokens(thinking)) > 0:
        part = backend.complete(
            prompt + thinking, room, [THINK_CLOSE], seed=seed + phase, on_text=stream.push, **sampling
        )
        phase += 1
        thinking += part.text
        if part.finish_reason == "length":  # fewer tokens than generated ids after re-tokenization: fill up
            if not part.text:
                break
            continue
        if waits < wait and backend.count_tokens(thinking) < min_tokens:
            thinking += wait_text
            stream.push(wait_text)
            waits += 1
            continue
        capped = False
        break
    suffix = cap_message if capped else ""
    thinking = _fit(backend, thinking, suffix, limit) + suffix
    stream.finish(thinking)
    return thinking, waits, phase


def _result(backend: Backend, text: str, finish: str, budget, mode, enforce, waits) -> GenerationResult:
    thinking, answer, _ = split_thinking(text)
    return GenerationResult(
        text=text,
        thinking=thinking,
        answer=answer,
        boxed=extract_boxed(answer),
        thinking_tokens=backend.count_tokens(thinking),
        answer_tokens=backend.count_tokens(answer),
        total_tokens=backend.count_tokens(text),
        finish_reason=finish,
        budget=budget,
        mode=mode,
        enforce=enforce,
        waits=waits,
    )


def _check(budget, mode, enforce, min_tokens, wait, max_tokens) -> None:
    if enforce not in ENFORCE:
        raise ConfigError(f"unknown --enforce '{enforce}' (valid: {', '.join(ENFORCE)})")
    if mode not in prompts.MODES:
        raise ConfigError(f"unknown --mode '{mode}' (valid: {', '.join(prompts.MODES)})")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0):
        raise ConfigError(f"--budget must be a positive integer, got {budget!r}")
    if enforce != "none" and budget is None:
        raise ConfigError(f"--enforce {enforce} needs a --budget")
    if min_tokens is not None and (min_tokens < 0 or budget is not None and min_tokens > budget):
        raise ConfigError(f"--min-tokens must be between 0 and the budget, got {min_tokens}")
    if wait < 0:
        raise ConfigError(f"--wait must be >= 0, got {wait}")
    if max_tokens <= 0:
        raise ConfigError(f"--max-tokens must be positive, got {max_tokens}")


def generate(
    backend: Backend,
    question: str,
    budget: int | None,
    mode: str = "exact",
    enforce: str = "none",
    min_tokens: int | None = None,
    wait: int = 2,
    max_tokens: int = 4096,
    temperature: float = 0.6,
    top_p: float = 0.95,
    seed: int | None = None,
    prompt_cfg: PromptConfig | None = None,
    on_text: OnText = None,
    history: Messages | None = None,
    cap_message: str = "",
    wait_text: str = WAIT_TEXT,
    logit_bias: dict[int, float] | None = None,
) -> GenerationResult:
    """Answer ``question`` under a thinking ``budget`` (None: no budget sentence).

    ``max_tokens`` bounds all generated tokens. ``history``: earlier chat messages. ``cap_message`` is
    written before ``</think>`` when the cap closes the thinking (it counts towards the budget).
    ``logit_bias`` maps token ids to logit offsets. ``on_text`` receives the text as it is generated
    (under enforcement, the thinking arrives a few tokens late).
    """
    _check(budget, mode, enforce, min_tokens, wait, max_tokens)
    messages = list(history or []) + prompts.messages(question, budget, mode, prompt_cfg or PromptConfig())
    seed = backend.next_seed() if seed is None else seed
    sampling = {"temperature": temperature, "top_p": top_p, "logit_bias": logit_bias}
    if backend.vocab is None:
        return _chat_fallback(backend, messages, budget, mode, enforce, max_tokens, seed, sampling, on_text)
    prompt = backend.render(messages)
    backend.reset()
    if enforce == "none":
        done = backend.complete(prompt, max_tokens, [], seed=seed, on_text=on_text, **sampling)
        return _result(backend, done.text, done.finish_reason, budget, mode, enforce, 0)
    limit = min(budget, max_tokens - backend.count_tokens(THINK_CLOSE))
    if cap_message and backend.count_tokens(cap_message) >= limit:
        raise ConfigError(f"--cap-message is longer than the budget of {limit} tokens")
    min_tokens = budget if min_tokens is None else min_tokens
    thinking, waits, phases = _think(
        backend,
        prompt,
        limit,
        min_tokens,
        wait if enforce == "forcing" else 0,
        wait_text,
        cap_message,
        seed,
        sampling,
        on_text,
    )
    head = thinking + THINK_CLOSE
    if on_text is not None:
        on_text(THINK_CLOSE)
    room = max_tokens - backend.count_tokens(head)
    done = backend.complete(prompt + head, room, [], seed=seed + phases, on_text=on_text, **sampling)
    return _result(backend, head + done.text, done.finish_reason, budget, mode, enforce, waits)


def _chat_fallback(backend, messages, budget, mode, enforce, max_tokens, seed, sampling, on_text) -> GenerationResult:
    if enforce != "none":
        raise ConfigError(f"--enforce {enforce} counts tokens locally: give --tokenizer (HF folder or .gguf)")
    text, finish, tokens = backend.chat(messages, max_tokens, seed=seed, on_text=on_text, **sampling)
    thinking, answer, _ = split_thinking(text)
    return GenerationResult(
        text, thinking, answer, extract_boxed(answer), -1, -1, tokens, finish, budget, mode, enforce
    )


# ---------------------------------------------------------------- CLI


def add_backend_arguments(parser) -> None:
    """Model / endpoint options shared by ``generate`` and ``chat``."""
    g = parser.add_argument_group("model")
    g.add_argument("--model", help="a .gguf file (llama.cpp), an HF model folder (transformers), or the served name")
    g.add_argument("--adapter", help="PEFT LoRA adapter folder (HF models)")
    g.add_argument("--endpoint", help="OpenAI-compatible server URL, e.g. http://127.0.0.1:8080/v1")
    g.add_argument("--tokenizer", help="with --endpoint: HF tokenizer folder or .gguf for the template and counts")
    g.add_argument("--n-ctx", type=int, default=8192, help="llama.cpp context size (default 8192)")
    g.add_argument("--threads", type=int, help="llama.cpp threads (default: llama-cpp-python's choice)")


def add_budget_arguments(parser) -> None:
    """Budget, enforcement and sampling options shared by ``generate`` and ``chat``."""
    g = parser.add_argument_group("budget")
    g.add_argument("--budget", type=int, help="thinking budget N in tokens (omit: no budget sentence)")
    g.add_argument("--mode", choices=prompts.MODES, default="exact", help="'Think for N' or 'for maximum N'")
    g.add_argument("--enforce", choices=ENFORCE, default="none", help="none | cap (close at N) | forcing (s1)")
    g.add_argument("--min-tokens", type=int, help="forcing: minimum thinking tokens (default: the budget)")
    g.add_argument("--wait", type=int, default=2, help="forcing: at most this many 'Wait' insertions (default 2)")
    g.add_argument(
        "--cap-message", default="", help=f"text written before </think> at the cap, e.g. {CAP_MESSAGE_EXAMPLE!r}"
    )
    g.add_argument("--max-tokens", type=int, default=4096, help="bound on all generated tokens (default 4096)")
    g.add_argument("--temperature", type=float, default=0.6)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--seed", type=int, default=0)


def backend_from_args(args) -> Backend:
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


def generation_kwargs(args) -> dict:
    """The ``generate`` keyword arguments the shared options describe."""
    return {
        "budget": args.budget,
        "mode": args.mode,
        "enforce": args.enforce,
        "min_tokens": args.min_tokens,
        "wait": args.wait,
        "cap_message": args.cap_message,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
    }


def read_questions(path: str) -> list[str]:
    """One question per line, or JSONL rows with a ``question`` or ``problem`` field."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--file {path}: not found")
    lines = [(i, line.strip()) for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)]
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
        if not isinstance(question, str):
            raise ConfigError(f"{path}:{i}: no 'question' or 'problem' text field")
        questions.append(question)
    return questions


def summary(res: GenerationResult) -> str:
    """One line of counts for humans."""
    budget = "none" if res.budget is None else f"{res.budget} {res.mode}"
    waits = f", {res.waits} waits" if res.waits else ""
    return (
        f"[thinking {res.thinking_tokens} + answer {res.answer_tokens} = {res.total_tokens} tokens; "
        f"budget {budget}; enforce {res.enforce}{waits}; finish {res.finish_reason}; boxed {res.boxed}]"
    )


def add_arguments(parser) -> None:
    """CLI: ``l1lite generate``."""
    add_backend_arguments(parser)
    add_budget_arguments(parser)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="the question")
    src.add_argument("--file", help="one question per line, or JSONL with a question/problem field")
    parser.add_argument("--stream", action="store_true", help="print text as it is generated (stderr with --json)")
    parser.add_argument("--json", action="store_true", help="one JSON object per question on stdout")


def run(args) -> int:
    """CLI entry point."""
    questions = [args.prompt] if args.prompt is not None else read_questions(args.file)
    backend = backend_from_args(args)
    stream_to = sys.stderr if args.json else sys.stdout
    try:
        for i, question in enumerate(questions):
            on_text = (lambda s: print(s, end="", flush=True, file=stream_to)) if args.stream else None
            res = generate(backend, question, seed=args.seed + i, on_text=on_text, **generation_kwargs(args))
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

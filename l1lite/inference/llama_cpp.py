"""The llama.cpp backend: a GGUF through llama-cpp-python, with its own token-level loop.

Imports the backend interface and the value types; llama_cpp and numpy only inside functions.
Must not import another backend, the budget algorithm or the CLI.
"""

from __future__ import annotations

import bisect
import codecs
import os

from l1lite.inference.base import Backend, GGUFVocab, OnText, TextSink
from l1lite.inference.types import Completion, PromptTooLong, Sampling


class LlamaCppBackend(Backend):
    """A GGUF through llama-cpp-python, with a token-level loop.

    A prompt that extends the previous prompt reuses the ids of the text it shares with the previous
    prompt + completion (the model keeps its own tokenization and the KV cache matches); only the new
    text is tokenized. Any other prompt, and the first after ``reset``, is evaluated from scratch.
    """

    def __init__(self, path: str, n_ctx: int = 8192, seed: int = 0, n_threads: int | None = None) -> None:
        """Load the GGUF at ``path``.

        Args:
            path: the ``.gguf`` file; it must embed a chat template.
            n_ctx: context size in tokens (prompt and generated text).
            seed: seed of llama.cpp and of the backend's own seed stream.
            n_threads: threads for generation and prompt processing (default: llama-cpp-python's choice).
        """
        super().__init__(seed)
        from llama_cpp import Llama

        threads = {"n_threads": n_threads, "n_threads_batch": n_threads} if n_threads else {}
        self.llm = Llama(path, n_ctx=n_ctx, seed=seed, verbose=False, **threads)
        self.vocab = GGUFVocab(self.llm, path)
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

    def n_ctx(self) -> int:
        return self.llm.n_ctx()

    def reset(self) -> None:
        self._prompt = None  # so that a seed gives the same text whatever came before

    def complete(
        self, prompt: str, max_tokens: int, stop: list[str], sampling: Sampling, on_text: OnText = None
    ) -> Completion:
        import llama_cpp
        import numpy as np

        ids = self._prompt_ids(prompt)
        room = self.llm.n_ctx() - len(ids)
        if room <= 0:
            raise PromptTooLong(f"prompt of {len(ids)} tokens does not fit the context of {self.llm.n_ctx()} (--n-ctx)")
        max_tokens = min(max_tokens, room)
        processors = None
        if sampling.logit_bias:
            index = np.array(list(sampling.logit_bias), dtype=np.intc)
            delta = np.array(list(sampling.logit_bias.values()), dtype=np.single)

            def bias(_input_ids, scores):
                scores[index] += delta
                return scores

            processors = [bias]
        self.llm.set_seed(sampling.seed)
        sink = TextSink(stop, on_text)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        vocab = self.llm._model.vocab
        finish, new = "length", []
        tokens = self.llm.generate(
            ids,
            top_k=0,
            top_p=sampling.top_p,
            min_p=0.0,
            temp=sampling.temperature,
            logits_processor=processors,
            reset=True,
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

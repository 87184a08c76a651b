"""The transformers backend: an HF model folder, optionally with a PEFT LoRA adapter, generating through
:func:`l1lite.core.hf.generate_ids`.

Imports the backend interface and the value types; torch, transformers and peft only inside functions.
Must not import another backend, the budget algorithm or the CLI.
"""

from __future__ import annotations

from typing import Any

from l1lite.core.hf import generate_ids
from l1lite.inference.base import Backend, HFVocab, OnText, TextSink
from l1lite.inference.types import Completion, Sampling


def _decode(tokenizer: Any, ids: list[int]) -> str:
    """Text of generated ids: special tokens skipped, incomplete or invalid UTF-8 dropped (as llama.cpp does)."""
    text = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return text.replace("\ufffd", "")


class _StreamToSink:
    """transformers streamer: decodes the new ids so far and feeds the new text to a sink."""

    def __init__(self, tokenizer: Any, sink: TextSink) -> None:
        self.tokenizer = tokenizer
        self.sink = sink
        self.ids: list[int] = []
        self.text = ""
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # generate() first passes the prompt
            self.prompt_seen = True
            return
        self.ids.extend(value.reshape(-1).tolist())
        text = _decode(self.tokenizer, self.ids)
        if len(text) > len(self.text):
            self.sink.add(text[len(self.text) :])
            self.text = text

    def end(self) -> None:
        pass


class TransformersBackend(Backend):
    """An HF model folder with transformers, optionally with a PEFT LoRA adapter."""

    batched = True

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

            model = PeftModel.from_pretrained(model, adapter)
        self.model = model.eval()
        self.vocab = HFVocab(self.tokenizer)

    def complete(
        self, prompt: str, max_tokens: int, stop: list[str], sampling: Sampling, on_text: OnText = None
    ) -> Completion:
        from transformers import StoppingCriteria, StoppingCriteriaList

        torch = self.torch
        sink = TextSink(stop, on_text)
        if max_tokens <= 0:
            return Completion("", "length")
        streamer = _StreamToSink(self.tokenizer, sink)

        class AtStop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), sink.stopped, dtype=torch.bool, device=input_ids.device)

        ((new, ended),) = generate_ids(
            self.model,
            self.tokenizer,
            [prompt],
            max_tokens,
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([AtStop()]),
            **self._sampling(sampling),
        )
        finish = "stop" if sink.stopped or ended or len(new) < max_tokens else "length"
        return Completion(sink.close(), finish, len(new))

    def complete_batch(self, prompts: list[str], max_tokens: int, sampling: Sampling) -> list[Completion]:
        """One left-padded ``model.generate`` over ``prompts``; a row's ids end at its first end of sequence."""
        if max_tokens <= 0:
            return [Completion("", "length") for _ in prompts]
        rows = generate_ids(self.model, self.tokenizer, prompts, max_tokens, **self._sampling(sampling))
        return [
            Completion(_decode(self.tokenizer, new), "stop" if ended or len(new) < max_tokens else "length", len(new))
            for new, ended in rows
        ]

    def _sampling(self, sampling: Sampling) -> dict[str, Any]:
        """``model.generate`` arguments for ``sampling``; seeds torch with its seed."""
        kwargs: dict[str, Any] = {"do_sample": sampling.temperature > 0}
        if sampling.temperature > 0:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        if sampling.logit_bias:
            kwargs["sequence_bias"] = {(int(t),): float(b) for t, b in sampling.logit_bias.items()}
        self.torch.manual_seed(sampling.seed)
        return kwargs

"""The transformers backend: an HF model folder, optionally with a PEFT LoRA adapter.

Imports the backend interface and the value types; torch, transformers and peft only inside functions.
Must not import another backend, the budget algorithm or the CLI.
"""

from __future__ import annotations

from typing import Any

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
        ids = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        streamer = _StreamToSink(self.tokenizer, sink)

        class AtStop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), sink.stopped, dtype=torch.bool, device=input_ids.device)

        out = self._generate(
            ids,
            torch.ones_like(ids),
            max_tokens,
            sampling,
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([AtStop()]),
        )
        new = out[0, ids.shape[1] :].tolist()
        eos = self._eos_ids()
        finish = "stop" if sink.stopped or (new and new[-1] in eos) or len(new) < max_tokens else "length"
        return Completion(sink.close(), finish, len(new))

    def complete_batch(self, prompts: list[str], max_tokens: int, sampling: Sampling) -> list[Completion]:
        """One left-padded ``model.generate`` over ``prompts``; a row's ids end at its first end of sequence."""
        if max_tokens <= 0:
            return [Completion("", "length") for _ in prompts]
        rows = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        width = max(len(r) for r in rows)
        pad = self._pad_id()
        ids = self.torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        mask = self.torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        out = self._generate(ids, mask, max_tokens, sampling)
        eos = self._eos_ids()
        done = []
        for row in out[:, width:].tolist():
            new = row[: next((i + 1 for i, t in enumerate(row) if t in eos), len(row))]  # padding after the end
            finish = "stop" if (new and new[-1] in eos) or len(new) < max_tokens else "length"
            done.append(Completion(_decode(self.tokenizer, new), finish, len(new)))
        return done

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return self.tokenizer.eos_token_id if pad is None else pad

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        return set(eos if isinstance(eos, list) else [eos])

    def _generate(self, ids: Any, mask: Any, max_tokens: int, sampling: Sampling, **kwargs: Any) -> Any:
        """``model.generate`` from ``ids`` / ``mask`` with ``sampling`` (seeded here): prompt and new ids."""
        torch = self.torch
        kwargs["do_sample"] = sampling.temperature > 0
        if sampling.temperature > 0:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        if sampling.logit_bias:
            kwargs["sequence_bias"] = {(int(t),): float(b) for t, b in sampling.logit_bias.items()}
        torch.manual_seed(sampling.seed)
        with torch.no_grad():
            return self.model.generate(
                input_ids=ids.to(self.model.device),
                attention_mask=mask.to(self.model.device),
                max_new_tokens=max_tokens,
                pad_token_id=self._pad_id(),
                **kwargs,
            )

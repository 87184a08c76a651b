"""Training model loaders: ``unsloth`` (CUDA), ``bnb`` (4-bit nf4 + PEFT), ``plain`` (full precision + PEFT).

``choose`` picks one automatically with a reason; ``load`` returns ``(peft_model, tokenizer)``.
Owns the loader names (the values of ``model.backend``) and their check and the nf4 quantization (export's
dequantized merge reuses it). Unsloth is imported only through :mod:`l1lite.train.unsloth_adapter`; must not
import TRL, data, the training run or export.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from l1lite.core.config import ConfigError, LoraConfig, ModelConfig, RolloutsConfig
from l1lite.core.models import resolve_model
from l1lite.core.precision import device_dtype

log = logging.getLogger(__name__)
BACKENDS = ("auto", "unsloth", "bnb", "plain")


def check_backend(requested: str) -> None:
    """Raise :class:`ConfigError` unless ``requested`` is a loader name; imports nothing."""
    if requested not in BACKENDS:
        raise ConfigError(f"unknown model.backend '{requested}' (choose from {', '.join(BACKENDS)})")


MAX_LORA_R = 1024  # far above any useful LoRA rank: a typo (r=1e9) would try to allocate hundreds of GB


def check_lora(lora: LoraConfig) -> None:
    """Raise :class:`ConfigError` for a LoRA shape PEFT would refuse, or fail on, after the model loads."""
    if not 1 <= lora.r <= MAX_LORA_R:
        raise ConfigError(f"lora.r must be between 1 and {MAX_LORA_R}, got {lora.r}")
    if lora.alpha <= 0:
        raise ConfigError(f"lora.alpha must be > 0, got {lora.alpha}")
    if not 0 <= lora.dropout < 1:
        raise ConfigError(f"lora.dropout must be in [0, 1), got {lora.dropout}")
    if not lora.target_modules:
        raise ConfigError("lora.target_modules must name at least one module")


def choose(requested: str = "auto") -> tuple[str, str]:
    """Resolve ``requested`` to a loader name and the reason for it (imports Unsloth when it is a candidate)."""
    check_backend(requested)
    import torch

    from l1lite.train import unsloth_adapter

    if requested == "unsloth":
        ok, why = unsloth_adapter.availability()  # imports Unsloth now, before anything imports TRL
        if not ok:
            raise ConfigError(f"model.backend 'unsloth' is not usable here: {why}")
        return requested, "requested in config (model.backend)"
    if requested != "auto":
        return requested, "requested in config (model.backend)"
    if not torch.cuda.is_available():
        return "plain", "no CUDA GPU: full-precision base + LoRA on CPU"
    ok, why = unsloth_adapter.availability()
    if ok:
        return "unsloth", why
    return "bnb", f"CUDA without Unsloth ({why}): bitsandbytes nf4 + PEFT LoRA"


def _peft(model: Any, model_cfg: ModelConfig, lora: LoraConfig) -> Any:
    from peft import LoraConfig as PeftLoraConfig
    from peft import PeftModel, get_peft_model

    if model_cfg.adapter:
        return PeftModel.from_pretrained(model, model_cfg.adapter, is_trainable=True)
    cfg = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg)


def nf4_config(compute_dtype: Any) -> Any:
    """The 4-bit quantization the ``bnb`` loader trains against (export's ``dequantized`` merge reuses it)."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def disable_cpu_bf16_repack(model: Any) -> int:
    """Stop bitsandbytes from repacking 4-bit weights on AVX512-BF16 CPUs (it breaks training)."""
    import bitsandbytes as bnb

    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for m in layers:
        m.support_avx512bf16_for_cpu = False
    return len(layers)


def load(
    backend: str, model_cfg: ModelConfig, lora: LoraConfig, rollouts: RolloutsConfig | None = None
) -> tuple[Any, Any]:
    """Load the base model with LoRA adapters through loader ``backend`` (as resolved by :func:`choose`).

    Under Unsloth, vLLM rollouts (``rollouts``, see :func:`l1lite.train.rollouts.engine_for`) are its ``fast_inference``
    engine, given ``rollouts.gpu_memory_utilization`` of the GPU.
    """
    if backend == "unsloth":
        from l1lite.train import unsloth_adapter
        from l1lite.train.rollouts import engine_for

        rollouts = rollouts or RolloutsConfig()
        fast = engine_for(rollouts, backend) == "vllm"
        return unsloth_adapter.load(model_cfg, lora, fast, rollouts.gpu_memory_utilization)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    name = resolve_model(model_cfg.name)
    tokenizer = AutoTokenizer.from_pretrained(name)
    if backend == "bnb":
        from peft import prepare_model_for_kbit_training

        compute = getattr(torch, device_dtype())
        model = AutoModelForCausalLM.from_pretrained(
            name,
            quantization_config=nf4_config(compute),
            dtype=compute,
            device_map={"": torch.cuda.current_device()} if cuda else {"": "cpu"},  # this rank's GPU
        )
        disable_cpu_bf16_repack(model)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=model_cfg.gradient_checkpointing)
    else:
        model = AutoModelForCausalLM.from_pretrained(name, dtype=getattr(torch, device_dtype()))
        if cuda:
            model = model.to("cuda")
    return _peft(model, model_cfg, lora), tokenizer


def generating(backend: str, model: Any) -> AbstractContextManager:
    """The context in which ``model`` (loaded by :func:`load` with loader ``backend``) may call ``generate`` itself."""
    if backend == "unsloth":
        from l1lite.train import unsloth_adapter

        return unsloth_adapter.generating(model)
    return nullcontext()

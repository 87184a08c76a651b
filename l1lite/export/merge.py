"""Merging a LoRA adapter into its base: the checks before a merge and the plain and nf4-dequantized merges.

:func:`merge_adapter` runs every check a merge needs (merge target, adapter against base, 16-bit base)
before it loads a weight, so a caller need not check first. The nf4 quantization comes from
``l1lite.train.loaders.nf4_config``, the one the ``bnb`` training loader uses.

Must not import the rest of ``l1lite.export`` except the safetensors reader in ``gguf``, nor
``l1lite.train.run``; torch, transformers, peft and bitsandbytes are imported only when called.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from l1lite.core.config import ConfigError
from l1lite.core.files import HF_MODEL_FILES, atomic_path
from l1lite.core.models import check_available, check_provenance, local_dir
from l1lite.export.gguf import safetensors_index

MERGE_TARGETS = ("base16", "dequantized")


def _name_key(ref: str | Path) -> str:
    """Loose identity of a model reference: hub id, local folder or hub-cache snapshot -> normalized name."""
    text = str(ref).rstrip("/")
    cache = re.search(r"models--[^/]+--([^/]+)", text)
    name = cache.group(1) if cache else Path(text).name
    name = re.sub(r"(-unsloth)?(-bnb)?-4bit$", "", name.lower())
    return re.sub(r"[^a-z0-9]", "", name)


def check_adapter(base: str | Path, adapter: str | Path) -> None:
    """Raise a one-line :class:`ConfigError` if ``adapter`` was not trained on ``base``.

    Checked: the base's name, each LoRA tensor's shape against the base weight, and (when the adapter records
    one, see :data:`l1lite.core.models.PROVENANCE`) the fingerprint of the base weights it was trained on.
    """
    adapter = Path(adapter)
    cfg_path = adapter / "adapter_config.json"
    if not adapter.is_dir():
        raise ConfigError(f"--adapter {adapter}: adapter folder not found")
    if not cfg_path.is_file():
        raise ConfigError(f"{adapter}: no adapter_config.json (not a PEFT adapter folder)")
    trained_on = json.loads(cfg_path.read_text()).get("base_model_name_or_path") or ""
    if trained_on and _name_key(trained_on) != _name_key(base):
        raise ConfigError(f"adapter {adapter} was trained on '{trained_on}', not on base '{base}'")
    base_dir = local_dir(base)
    if base_dir is None or not list(base_dir.glob("*.safetensors")):
        return
    base_shapes = {k: v[2]["shape"] for k, v in safetensors_index(base_dir).items()}
    for key, (_, _, info) in safetensors_index(adapter).items():
        found = re.match(r"base_model\.model\.(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$", key)
        if not found:
            continue
        module, ab = found.groups()
        target = base_shapes.get(f"{module}.weight")
        if target is None:
            raise ConfigError(f"adapter {adapter} targets '{module}', which base '{base}' does not have")
        out_features, in_features = target
        if (ab == "A" and info["shape"][1] != in_features) or (ab == "B" and info["shape"][0] != out_features):
            raise ConfigError(
                f"adapter {adapter}: lora_{ab} of '{module}' has shape {info['shape']}, "
                f"which does not fit base weight {target}"
            )
    check_provenance(base, adapter, base_dir)


def _load_dequantized(base: str | Path) -> Any:
    """Load ``base`` in float32 with each Linear weight replaced by its nf4 round trip (as the adapter saw it).

    The 4-bit copy is loaded through bitsandbytes (``BitsAndBytesConfig``, nf4, double quantization, as in
    QLoRA training) and each ``Linear4bit`` is dequantized; nothing is re-quantized.
    """
    import bitsandbytes as bnb
    import torch
    from transformers import AutoModelForCausalLM

    from l1lite.train.loaders import nf4_config

    q_model = AutoModelForCausalLM.from_pretrained(
        base, quantization_config=nf4_config(torch.bfloat16), device_map="cpu"
    )
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    modules = dict(model.named_modules())
    for name, module in q_model.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            weight = bnb.functional.dequantize_4bit(module.weight.data, module.weight.quant_state)
            modules[name].weight.data = weight.float().reshape(modules[name].weight.shape)
    return model


def merge_adapter(
    base: str | Path,
    adapter: str | Path | None,
    out_dir: str | Path,
    merge_into: str = "base16",
    force: bool = False,
) -> Path:
    """Merge a LoRA ``adapter`` into ``base`` and save safetensors + tokenizer to ``out_dir``.

    The merge target, the base's presence (locally or on a reachable hub), :func:`check_adapter` and the base's
    precision are checked before anything is loaded.
    The tokenizer is the adapter's when it has one, otherwise the base's.

    Args:
        base (`str` or `Path`):
            The 16-bit base model: hub id or local folder (an already quantized checkpoint is refused).
        adapter (`str`, `Path` or `None`):
            PEFT LoRA adapter folder trained on ``base``; `None` saves the base as is.
        out_dir (`str` or `Path`):
            Folder to save the merged model to (atomically).
        merge_into (`str`, *optional*, defaults to `"base16"`):
            ``"base16"`` merges into the 16-bit base (in float32, saved in the base's dtype);
            ``"dequantized"`` merges into the dequantized nf4 weights the adapter was trained against.
        force (`bool`, *optional*, defaults to `False`):
            Overwrite an existing ``out_dir``.

    Returns:
        `Path`: ``out_dir``.
    """
    if merge_into not in MERGE_TARGETS:
        raise ConfigError(f"merge_into must be one of {', '.join(MERGE_TARGETS)}, got '{merge_into}'")
    check_available(str(base), "--base")
    if adapter is not None:
        check_adapter(base, adapter)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(base)
    if getattr(config, "quantization_config", None) is not None:
        raise ConfigError(
            f"base '{base}' is an already quantized checkpoint; give the 16-bit base model "
            "(--merge-into dequantized reproduces its nf4 weights)"
        )
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or torch.float32
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        dtype = torch.bfloat16
    if merge_into == "dequantized":
        model = _load_dequantized(base)
    else:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    model = model.to(dtype)
    tokenizer = AutoTokenizer.from_pretrained(
        adapter if adapter and (Path(adapter) / "tokenizer.json").is_file() else base
    )
    with atomic_path(out_dir, force, holds=HF_MODEL_FILES) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)

"""Merge a LoRA adapter into its base model and export GGUF (f16 / q8_0 / q4_k_m) plus an Ollama Modelfile.

``export`` is the whole pipeline: check, merge (``merge``), f16 GGUF (``gguf``), quantize (``quantize``),
Ollama Modelfile (``ollama``) and verify (``verify``); each job lives in its own module and none of them
imports this package or each other, except ``merge`` reading safetensors headers through ``gguf``.
``cli`` is ``l1lite export``. Every output is written atomically and never overwritten without ``force``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from l1lite.config import ConfigError
from l1lite.export.gguf import export_gguf, llama_cpp_convert, load_hf_config
from l1lite.export.merge import check_adapter, merge_adapter, resolve_dir
from l1lite.export.ollama import write_modelfile
from l1lite.export.quantize import QUANT_TYPES, quantize_gguf
from l1lite.export.verify import VerificationError, verify_gguf
from l1lite.files import atomic_path

__all__ = [
    "QUANT_TYPES",
    "VerificationError",
    "check_adapter",
    "export",
    "export_gguf",
    "merge_adapter",
    "quantize_gguf",
    "verify_gguf",
    "write_modelfile",
]


def _default_name(base: str | Path, adapter: str | Path | None) -> str:
    """The adapter's (or base's) folder name; for ``RUN/adapter`` from ``l1lite train``, the run's name."""
    from l1lite.train import ADAPTER_DIR

    ref = Path(str(adapter if adapter is not None else base).rstrip("/"))
    if adapter is not None and ref.name == ADAPTER_DIR and ref.parent.name:
        ref = ref.parent
    return re.sub(r"[^A-Za-z0-9._-]+", "-", ref.name) or "model"


def export(
    base: str | Path,
    adapter: str | Path | None,
    out: str | Path,
    quant: tuple[str, ...] | list[str] = ("f16",),
    name: str | None = None,
    merge_into: str = "base16",
    force: bool = False,
    verify: bool = True,
    llama_cpp: str | Path | None = None,
) -> dict:
    """Merge, convert to GGUF (one file per type in ``quant``), write the Modelfile and verify.

    Returns ``{"merged", "gguf": {type: path}, "modelfile", "verify"}``; raises
    :class:`VerificationError` (after writing ``verify.json``) if the f16 GGUF fails verification.
    """
    quant = tuple(dict.fromkeys(quant))
    bad = [q for q in quant if q not in QUANT_TYPES]
    if bad or not quant:
        raise ConfigError(f"unknown GGUF type '{bad[0] if bad else ''}' (choose from {', '.join(QUANT_TYPES)})")
    if llama_cpp is None and (base_dir := resolve_dir(base)) is not None and (base_dir / "config.json").is_file():
        load_hf_config(base_dir)  # unsupported architecture: fail before any work
    out = Path(out)
    name = name or _default_name(base, adapter)
    paths = {q: out / f"{name}-{q}.gguf" for q in quant}
    finals = [out / "merged", *paths.values(), out / "Modelfile"] + ([out / "verify.json"] if verify else [])
    existing = [str(p) for p in finals if p.exists()]
    if existing and not force:
        raise ConfigError(f"{existing[0]} exists (use --force to overwrite)")

    # merge_adapter checks the merge target and the adapter against the base before it loads anything
    merged = merge_adapter(base, adapter, out / "merged", merge_into=merge_into, force=force)
    f16 = paths.get("f16", out / f".{name}-f16.intermediate.gguf")
    if llama_cpp is not None:
        llama_cpp_convert(llama_cpp, merged, f16, force=True)
    else:
        export_gguf(merged, f16, force=True, name=name)
    try:
        for q in quant:
            if q != "f16":
                quantize_gguf(f16, paths[q], q, force=force)
    finally:
        if "f16" not in quant:
            f16.unlink(missing_ok=True)
    smallest = next(paths[q] for q in ("q4_k_m", "q8_0", "f16") if q in paths)
    modelfile = write_modelfile(smallest, out, force=force)
    result = {"merged": merged, "gguf": paths, "modelfile": modelfile, "verify": None}
    if verify:
        import torch
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
        result["verify"] = {q: verify_gguf(merged, paths[q], hf_model=model) for q in quant}
        with atomic_path(out / "verify.json", force) as tmp:
            tmp.write_text(json.dumps(result["verify"], indent=2))
        if "f16" in quant and not result["verify"]["f16"]["ok"]:
            v = result["verify"]["f16"]
            raise VerificationError(
                f"f16 GGUF does not match the merged model: max |logit diff| {v['max_abs_logit_diff']:.4g}, "
                f"top-1 agreement {v['top1_agreement']:.3f}, greedy identical {v['greedy_identical']}"
            )
    return result

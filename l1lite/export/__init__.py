"""Merge a LoRA adapter into its base model and export GGUF (f16 / q8_0 / q4_k_m) plus an Ollama Modelfile.

This package owns :func:`export`, the whole pipeline, and re-exports each job's public names. The jobs:
``merge`` (adapter checks, plain and nf4-dequantized merge), ``gguf`` (safetensors reader, f16 GGUF
writer, llama.cpp converter fallback), ``quantize``, ``ollama`` (Modelfile) and ``verify`` (logits and
greedy continuations against the merged model); ``cli`` is ``l1lite export``. Every output is written
atomically and never overwritten without ``force``.

No job module imports this package or ``cli``; this file must not import ``cli`` (which imports it), nor
training (a run's adapter folder name comes from ``l1lite.core.models``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from l1lite.core.config import ConfigError
from l1lite.core.files import atomic_path, check_output
from l1lite.core.models import ADAPTER_DIR, BUILTIN_PREFIX, local_dir, resolve_model
from l1lite.core.progress import Bar
from l1lite.export.gguf import export_gguf, llama_cpp_convert, load_hf_config
from l1lite.export.merge import check_adapter, merge_adapter
from l1lite.export.ollama import write_modelfile
from l1lite.export.quantize import QUANT_TYPES, quantize_gguf
from l1lite.export.verify import VerificationError, verify_gguf

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
    progress: bool = True,
) -> dict[str, Any]:
    """Merge, convert to GGUF (one file per type in ``quant``), write the Modelfile and verify.

    Everything is checked before any work: the GGUF types, the architecture, existing outputs, then (in
    :func:`merge_adapter`, the first step) the merge target and the adapter against the base. Raises
    :class:`VerificationError` (after writing ``verify.json``) if the f16 GGUF fails verification.

    Args:
        base (`str` or `Path`):
            The 16-bit base model: hub id, local folder or an ``l1lite:`` model.
        adapter (`str`, `Path` or `None`):
            PEFT LoRA adapter folder trained on ``base``; `None` exports the base as is.
        out (`str` or `Path`):
            Output folder: ``merged/``, ``NAME-TYPE.gguf`` per type, ``Modelfile`` and ``verify.json``.
        quant (`tuple[str, ...]` or `list[str]`, *optional*, defaults to `("f16",)`):
            GGUF types to write, from :data:`QUANT_TYPES`; without ``"f16"`` the f16 file is only an intermediate.
        name (`str` or `None`, *optional*, defaults to `None`):
            File name stem; when `None`, the adapter's (or base's) folder name, or the run's name for
            ``RUN/adapter`` from ``l1lite train``.
        merge_into (`str`, *optional*, defaults to `"base16"`):
            ``"base16"`` or ``"dequantized"`` (see :func:`merge_adapter`).
        force (`bool`, *optional*, defaults to `False`):
            Overwrite existing outputs.
        verify (`bool`, *optional*, defaults to `True`):
            Compare every GGUF with the merged model (:func:`verify_gguf`) and write ``verify.json``.
        llama_cpp (`str`, `Path` or `None`, *optional*, defaults to `None`):
            A llama.cpp checkout whose ``convert_hf_to_gguf.py`` writes the f16 GGUF instead of l1lite's writer.
        progress (`bool`, *optional*, defaults to `True`):
            Draw the steps' bar (merge, f16, each quantization, verification) on a terminal; else one line when done.

    Returns:
        `dict[str, Any]`: ``{"merged": Path, "gguf": {type: Path}, "modelfile": Path, "verify": {type: dict} or None}``.
    """
    quant = tuple(dict.fromkeys(quant))
    bad = [q for q in quant if q not in QUANT_TYPES]
    if bad or not quant:
        raise ConfigError(f"unknown GGUF type '{bad[0] if bad else ''}' (choose from {', '.join(QUANT_TYPES)})")
    if name is not None and (not name.strip() or name in (".", "..") or "/" in name or "\\" in name or "\0" in name):
        raise ConfigError(f"--name {name!r} must be a file name (no folders): the GGUFs are NAME-TYPE.gguf in --out")
    check_output(out, "--out", folder=True)
    if str(base).startswith(BUILTIN_PREFIX):  # l1lite:tiny, l1lite:smollm2-135m: as train and eval take them
        base = resolve_model(str(base))
    if llama_cpp is None and (base_dir := local_dir(base)) is not None and (base_dir / "config.json").is_file():
        load_hf_config(base_dir)  # unsupported architecture: fail before any work
    out = Path(out)
    name = name or _default_name(base, adapter)
    paths = {q: out / f"{name}-{q}.gguf" for q in quant}
    finals = [out / "merged", *paths.values(), out / "Modelfile"] + ([out / "verify.json"] if verify else [])
    existing = [str(p) for p in finals if p.exists()]
    if existing and not force:
        raise ConfigError(f"{existing[0]} exists (use --force to overwrite)")

    steps = ["merge", "f16", *(q for q in quant if q != "f16"), *(["verify"] if verify else [])]
    with Bar("export", len(steps), "step", progress) as bar:
        bar.set_postfix_str("merge")
        # merge_adapter checks the merge target and the adapter against the base before it loads anything
        merged = merge_adapter(base, adapter, out / "merged", merge_into=merge_into, force=force)
        bar.update()
        bar.set_postfix_str("f16")
        f16 = paths.get("f16", out / f".{name}-f16.intermediate.gguf")
        if llama_cpp is not None:
            llama_cpp_convert(llama_cpp, merged, f16, force=True)
        else:
            export_gguf(merged, f16, force=True, name=name)
        bar.update()
        try:
            for q in quant:
                if q != "f16":
                    bar.set_postfix_str(q)
                    quantize_gguf(f16, paths[q], q, force=force)
                    bar.update()
        finally:
            if "f16" not in quant:
                f16.unlink(missing_ok=True)
        smallest = next(paths[q] for q in ("q4_k_m", "q8_0", "f16") if q in paths)
        modelfile = write_modelfile(smallest, out, force=force)
        result = {"merged": merged, "gguf": paths, "modelfile": modelfile, "verify": None}
        if verify:
            import torch
            from transformers import AutoModelForCausalLM

            bar.set_postfix_str("verify")
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
            bar.update()
        bar.set_postfix_str(", ".join(steps))
    return result

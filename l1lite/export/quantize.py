"""Quantizing an f16 GGUF with llama.cpp's own quantizer, and the GGUF types l1lite writes.

Must not import the rest of ``l1lite.export``; llama-cpp-python is imported only when called.
"""

from __future__ import annotations

import logging
from pathlib import Path

from l1lite.core.config import ConfigError
from l1lite.core.files import atomic_path

QUANT_TYPES = ("f16", "q8_0", "q4_k_m")


def quantize_gguf(f16_path: str | Path, out_path: str | Path, qtype: str, force: bool = False) -> Path:
    """Quantize an f16 GGUF to ``q8_0`` or ``q4_k_m`` with llama.cpp's quantizer (llama-cpp-python).

    Args:
        f16_path (`str` or `Path`):
            The f16 GGUF to quantize.
        out_path (`str` or `Path`):
            The quantized GGUF to write (atomically).
        qtype (`str`):
            ``"q8_0"`` or ``"q4_k_m"``.
        force (`bool`, *optional*, defaults to `False`):
            Overwrite an existing ``out_path``.

    Returns:
        `Path`: ``out_path``.
    """
    import llama_cpp

    ftypes = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}
    if qtype not in ftypes:
        raise ConfigError(f"unknown quantization type '{qtype}' (choose from {', '.join(ftypes)})")
    out_path = Path(out_path)
    log = logging.getLogger("llama-cpp-python")  # llama.cpp's log goes through this logger
    level = log.level
    with atomic_path(out_path, force) as tmp:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftypes[qtype]
        log.setLevel(logging.ERROR)
        try:
            rc = llama_cpp.llama_model_quantize(str(f16_path).encode(), str(tmp).encode(), params)
        finally:
            log.setLevel(level)
        if rc != 0 or not tmp.is_file():
            raise RuntimeError(f"llama.cpp failed to quantize {f16_path} to {qtype} (code {rc})")
    return out_path

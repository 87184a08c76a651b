"""The dtype a card computes in, from its compute capability. Imports torch only inside :func:`device_dtype`."""

from __future__ import annotations


def precision_for(capability: tuple[int, int] | float | None) -> str:
    """The dtype for a GPU of compute ``capability`` (``(major, minor)`` or e.g. ``7.5``; None: no GPU).

    bfloat16 where the GPU computes in it natively (capability 8.0 and up: A100, L4, A10G, RTX 30xx/40xx, H100),
    float16 below (T4, V100: ``torch.cuda.is_bf16_supported()`` is True there too, emulated at float32 speed),
    float32 on the CPU.
    """
    if capability is None:
        return "float32"
    major = capability[0] if isinstance(capability, tuple) else int(capability)
    return "bfloat16" if major >= 8 else "float16"


def device_dtype() -> str:
    """:func:`precision_for` this machine's current GPU."""
    import torch

    return precision_for(torch.cuda.get_device_capability() if torch.cuda.is_available() else None)

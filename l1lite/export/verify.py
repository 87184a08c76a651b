"""Verifying a GGUF against the Hugging Face model it came from: logits, top-1 agreement, greedy continuations.

The model runs in transformers and the GGUF in llama.cpp, on budget prompts rendered by ``l1lite.core.prompts``
(the format training uses). Must not import the rest of ``l1lite.export``; torch, transformers and
llama-cpp-python are imported only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from l1lite.core import prompts
from l1lite.core.config import PromptConfig

VERIFY_QUESTIONS = (
    "What is 17 * 23?",
    "Solve $x^2 - 5x + 6 = 0$ for $x$.",
    "A train travels 120 km in 1.5 hours. What is its average speed?",
)
VERIFY_BUDGET = 512


def _verify_prompts(tokenizer: Any) -> list[list[int]]:
    """Token ids of each verification question as an exact-budget prompt (``VERIFY_BUDGET`` tokens)."""
    cfg = PromptConfig()
    texts = [prompts.render(tokenizer, q, VERIFY_BUDGET, "exact", cfg) for q in VERIFY_QUESTIONS]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def _hf_greedy(model: Any, ids: list[int], n: int, n_real: int) -> list[int]:
    import torch

    out, past, step = [], None, torch.tensor([ids])
    with torch.no_grad():
        for _ in range(n):
            res = model(step, past_key_values=past, use_cache=True)
            past = res.past_key_values
            out.append(int(res.logits[0, -1, :n_real].argmax()))
            step = torch.tensor([[out[-1]]])
    return out


def _llama_greedy(llm: Any, ids: list[int], n: int, n_real: int) -> list[int]:
    llm.reset()
    llm.eval(ids)
    out = []
    for _ in range(n):
        out.append(int(np.argmax(llm.scores[llm.n_tokens - 1, :n_real])))
        llm.eval([out[-1]])
    return out


def verify_gguf(
    hf_dir: str | Path,
    gguf_path: str | Path,
    n_greedy: int = 32,
    rel_tol: float = 0.05,
    min_top1: float = 0.98,
    hf_model: Any = None,
) -> dict[str, Any]:
    """Compare a GGUF (in llama.cpp) with the Hugging Face model it came from on chat-formatted prompts.

    Reports the max abs logit difference over the real vocabulary, top-1 agreement over all prompt
    positions and whether the ``n_greedy``-token greedy continuations are identical. ``ok`` holds when
    the continuations match, top-1 agreement >= ``min_top1`` and the max difference is within
    ``rel_tol`` of the largest |logit|.

    Args:
        hf_dir (`str` or `Path`):
            The Hugging Face model folder the GGUF was converted from (its tokenizer renders the prompts).
        gguf_path (`str` or `Path`):
            The GGUF to check.
        n_greedy (`int`, *optional*, defaults to `32`):
            Length of the greedy continuations compared per prompt.
        rel_tol (`float`, *optional*, defaults to `0.05`):
            Largest allowed max abs logit difference, relative to the largest |logit| (at least 1).
        min_top1 (`float`, *optional*, defaults to `0.98`):
            Smallest allowed top-1 agreement.
        hf_model (`transformers.PreTrainedModel` or `None`, *optional*, defaults to `None`):
            The model already loaded from ``hf_dir`` (in float32, eval mode); loaded here when `None`.

    Returns:
        `dict[str, Any]`: ``gguf``, ``prompts``, ``max_abs_logit_diff``, ``max_abs_logit``, ``top1_agreement``,
        ``greedy_identical``, ``greedy_identical_per_prompt`` and ``ok``.
    """
    import llama_cpp
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = hf_model or AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    n_real = len(tokenizer)
    prompt_ids = _verify_prompts(tokenizer)
    n_ctx = max(len(p) for p in prompt_ids) + n_greedy + 16
    llm = llama_cpp.Llama(str(gguf_path), n_ctx=n_ctx, logits_all=True, verbose=False, seed=0)
    try:
        max_diff, max_logit, agree, total, greedy_same = 0.0, 0.0, 0, 0, []
        for ids in prompt_ids:
            with torch.no_grad():
                ref = model(torch.tensor([ids])).logits[0, :, :n_real].float().numpy()
            llm.reset()
            llm.eval(ids)
            got = np.asarray(llm.scores[: len(ids), :n_real], dtype=np.float32)
            max_diff = max(max_diff, float(np.abs(ref - got).max()))
            max_logit = max(max_logit, float(np.abs(ref).max()))
            agree += int((ref.argmax(-1) == got.argmax(-1)).sum())
            total += len(ids)
            greedy_same.append(_hf_greedy(model, ids, n_greedy, n_real) == _llama_greedy(llm, ids, n_greedy, n_real))
    finally:
        llm.close()
    top1 = agree / total
    result = {
        "gguf": str(gguf_path),
        "prompts": len(prompt_ids),
        "max_abs_logit_diff": max_diff,
        "max_abs_logit": max_logit,
        "top1_agreement": top1,
        "greedy_identical": all(greedy_same),
        "greedy_identical_per_prompt": greedy_same,
    }
    result["ok"] = bool(all(greedy_same) and top1 >= min_top1 and max_diff <= rel_tol * max(max_logit, 1.0))
    return result


class VerificationError(RuntimeError):
    """The f16 GGUF does not reproduce the Hugging Face model."""

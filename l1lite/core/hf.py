"""Batched transformers generation shared by training (the hindsight start samples with it) and inference.

Imports torch only inside the function; no other l1lite module.
"""

from __future__ import annotations

from typing import Any


def generate_ids(
    model: Any, tokenizer: Any, prompts: list[str], max_tokens: int, **kwargs: Any
) -> list[tuple[list[int], bool]]:
    """One left-padded ``model.generate`` over ``prompts``: each row's new ids and whether it ended by itself.

    A row's ids run up to and including its first end of sequence (the padding after it dropped).

    Args:
        model: the causal LM (a PEFT model is fine).
        tokenizer: its tokenizer (the end of sequence pads when it has no pad token).
        prompts: rendered prompts (no special tokens added).
        max_tokens: the most new tokens per row.
        kwargs: more ``model.generate`` arguments (sampling, streamer, stopping criteria).
    """
    import torch

    pad = tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    rows = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=model.device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=model.device)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_tokens, pad_token_id=pad, **kwargs)
    done = []
    for row in out[:, width:].tolist():
        end = next((i + 1 for i, t in enumerate(row) if t in eos), None)
        done.append((row[:end], end is not None))
    return done

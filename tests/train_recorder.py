"""A custom reward (``reward.custom``) that records what each completion was trained against."""

from __future__ import annotations

import json
import os


def record(completions, target_tokens, prompts, trainer_state=None, **kwargs) -> list[float]:
    """Append (step, target, prompt text) per completion to $L1LITE_RECORD; reward 0."""
    with open(os.environ["L1LITE_RECORD"], "a") as fh:
        for target, prompt in zip(target_tokens, prompts, strict=False):
            text = prompt[-1]["content"] if isinstance(prompt, list) else prompt
            fh.write(json.dumps({"step": trainer_state.global_step, "target": target, "prompt": text}) + "\n")
    return [0.0] * len(completions)

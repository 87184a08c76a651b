"""A custom reward (``reward.custom``) that records what each completion was trained against."""

from __future__ import annotations

import json
import os
import time


def record(completions, target_tokens, budget_mode, slot, prompts, trainer_state=None, **kwargs) -> list[float]:
    """Append (rank, step, slot, target, mode, prompt text) per completion to $L1LITE_RECORD; reward 0.

    One line per write (line-buffered, append mode), so the ranks of a multi-process run can share the file.
    ``$L1LITE_RECORD_DELAY`` seconds of sleep per call slow a run down for a test that kills it mid-run.
    """
    time.sleep(float(os.environ.get("L1LITE_RECORD_DELAY", 0)))
    with open(os.environ["L1LITE_RECORD"], "a", buffering=1) as fh:
        for target, mode, s, prompt in zip(target_tokens, budget_mode, slot, prompts, strict=False):
            text = prompt[-1]["content"] if isinstance(prompt, list) else prompt
            rec = {"rank": int(os.environ.get("RANK", 0)), "step": trainer_state.global_step, "slot": s}
            fh.write(json.dumps({**rec, "target": target, "mode": mode, "prompt": text}) + "\n")
    return [0.0] * len(completions)

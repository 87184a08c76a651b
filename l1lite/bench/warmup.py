"""Supervised format warm-up (TRL SFTTrainer): teach a base model the R1 trace format before GRPO.

Rows are ``{"prompt": rendered chat prompt, "completion": thinking + "</think>" + answer}``; SFTTrainer
appends EOS and trains on the completion only. The whole model is trained and saved as a plain HF folder.
Imports no l1lite module (TRL and transformers only inside :func:`warmup`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def warmup(
    model_dir: str | Path,
    rows: list[dict[str, str]],
    out_dir: str | Path,
    steps: int,
    learning_rate: float = 3e-3,
    batch_size: int = 32,
    seed: int = 0,
    callbacks: list | None = None,
) -> dict[str, Any]:
    """Fine-tune ``model_dir`` on prompt/completion ``rows`` for ``steps`` steps; save to ``out_dir``.

    Args:
        model_dir (`str` or `Path`):
            The HF model folder to fine-tune (the whole model).
        rows (`list[dict[str, str]]`):
            ``{"prompt": rendered chat prompt, "completion": trace}`` rows.
        out_dir (`str` or `Path`):
            Where the fine-tuned model and tokenizer are saved.
        steps (`int`):
            Optimizer steps.
        learning_rate (`float`, *optional*, defaults to `3e-3`):
            Peak learning rate (cosine schedule).
        batch_size (`int`, *optional*, defaults to `32`):
            Rows per step.
        seed (`int`, *optional*, defaults to `0`):
            Trainer seed.
        callbacks (`list` or `None`, *optional*, defaults to `None`):
            Extra TrainerCallbacks (the benchmark's deadline).

    Returns:
        `dict[str, Any]`: ``steps``, ``train_loss``, ``final_loss`` and ``wall_seconds``.
    """
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    if steps < 1 or not rows:
        raise ValueError(f"warm-up needs steps >= 1 and rows, got {steps} steps and {len(rows)} rows")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    args = SFTConfig(
        output_dir=str(out_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, steps // 20),
        weight_decay=0.0,
        completion_only_loss=True,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        save_strategy="no",
        report_to="none",
        logging_steps=max(1, steps // 10),
        seed=seed,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    start = time.time()
    result = trainer.train()
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return {
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "final_loss": losses[-1] if losses else None,
        "wall_seconds": round(time.time() - start, 2),
    }

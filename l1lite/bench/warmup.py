"""Supervised format warm-up (TRL SFTTrainer): teach a base model the R1 trace format before GRPO.

Rows are ``{"prompt": rendered chat prompt, "completion": thinking + "</think>" + answer}``; SFTTrainer
appends EOS and trains on the completion only. The whole model is trained and saved as a plain HF folder.
Imports TRL and transformers only inside :func:`warmup`.
"""

from __future__ import annotations

from pathlib import Path

from l1lite.core.progress import follow_steps


def warmup(
    model_dir: str | Path,
    rows: list[dict[str, str]],
    out_dir: str | Path,
    steps: int,
    learning_rate: float = 3e-3,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = True,
) -> None:
    """Fine-tune ``model_dir`` on prompt/completion ``rows`` for ``steps`` steps; save it to ``out_dir``.

    Args:
        model_dir: the HF model folder to fine-tune (the whole model).
        rows: ``{"prompt": rendered chat prompt, "completion": trace}`` rows.
        out_dir: where the fine-tuned model and tokenizer are saved.
        steps: optimizer steps.
        learning_rate: peak learning rate (cosine schedule).
        batch_size: rows per step.
        seed: trainer seed.
        progress: draw the steps' bar (on a terminal; else one line when done).
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
        disable_tqdm=not progress,
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer
    )
    follow_steps(trainer, "warm-up")
    trainer.train()
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))

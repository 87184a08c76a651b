"""Hindsight budgets: a supervised start before GRPO, built from the model's own answers.

Owns the stage between the curriculum and GRPO (config section ``hindsight``): the model to be trained (base
plus fresh LoRA) answers training problems once per style suffix with no budget sentence; every answer that ends
by itself is relabelled with its own token count as an exact budget (``Think for N tokens.``), and the LoRA is
fine-tuned on these pairs with TRL's SFTTrainer on the very tokens sampled (not a re-tokenization of their text,
which can differ in length), loss on the answer only. A pretrained model has never read a
budget sentence, and GRPO's length reward alone does not teach it to (``benchmarks/results/real/recipes.md``);
each pair here shows one number and a length that matches it. Writes ``hindsight/pairs.jsonl`` into the run's
output folder. Imports torch, datasets and TRL only inside functions; must not import the training run, export,
inference or evaluation.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from l1lite.core.config import ConfigError, HindsightConfig, PromptConfig, RewardConfig
from l1lite.core.grading import is_correct
from l1lite.core.hf import generate_ids
from l1lite.core.progress import Bar, follow_steps
from l1lite.core.prompts import render

log = logging.getLogger(__name__)
FOLDER = "hindsight"
PAIRS_FILE = "pairs.jsonl"
LR_SCHEDULERS = ("constant", "linear", "cosine")  # hindsight.lr_scheduler_type
# (prompts, max_tokens, temperature, the bar counting the answers) -> per prompt: the sampled ids (end of sequence
# last) and whether it ended
Sampler = Callable[[list[str], int, float, Bar], list[tuple[list[int], bool]]]


def check_hindsight(cfg: HindsightConfig) -> None:
    """Raise :class:`ConfigError` naming the first ``hindsight.*`` key with an unusable value."""
    valid = {
        "problems": cfg.problems >= 0,
        "styles": bool(cfg.styles),
        "temperature": cfg.temperature > 0,
        "max_tokens": cfg.max_tokens > 0,
        "min_tokens": 0 < cfg.min_tokens <= cfg.max_tokens,
        "epochs": cfg.epochs > 0,
        "learning_rate": cfg.learning_rate > 0,
        "batch_size": cfg.batch_size > 0,
        "micro_batch_size": cfg.micro_batch_size >= 0 and cfg.batch_size % (cfg.micro_batch_size or 1) == 0,
        "generation_batch_size": cfg.generation_batch_size > 0,
        "lr_scheduler_type": cfg.lr_scheduler_type in LR_SCHEDULERS,
    }
    for key, ok in valid.items():
        if not ok:
            value = getattr(cfg, key)
            need = {
                "problems": ">= 0 (0: no hindsight start)",
                "micro_batch_size": f"0 or a divisor of hindsight.batch_size ({cfg.batch_size})",
                "styles": "a non-empty list of suffixes ('' for none)",
                "min_tokens": f"between 1 and hindsight.max_tokens ({cfg.max_tokens})",
                "lr_scheduler_type": " | ".join(LR_SCHEDULERS),
            }.get(key, "> 0")
            raise ConfigError(f"hindsight.{key} must be {need}, got {value!r}")


def sample_pairs(
    model: Any,
    tokenizer: Any,
    problems: Any,
    cfg: HindsightConfig,
    prompt_cfg: PromptConfig,
    reward: RewardConfig,
    sampler: Sampler | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """The first ``cfg.problems`` problems, answered once per style, kept and relabelled (see the module docstring).

    ``sampler(prompts, max_tokens, temperature, bar)`` generates the answers (default: ``model.generate`` in batches
    of ``cfg.generation_batch_size``; a vLLM engine takes them all at once), counting them on ``bar``, a
    :class:`~l1lite.core.progress.Bar` drawn when ``progress``.

    Returns one row per kept answer: ``id``, ``style``, ``tokens`` (the answer's length with its end of sequence,
    as evaluation counts it), ``correct`` (by ``reward.grader``), ``prompt`` (rendered with ``tokens`` as the exact
    budget), ``completion`` (the answer's text) and ``completion_ids`` (its sampled tokens, the end of sequence last).
    """
    rows = problems.select(range(min(cfg.problems, len(problems)))).to_list()
    asks = [(r, s) for r in rows for s in cfg.styles]
    prompts = [render(tokenizer, r["question"] + s, None, "exact", prompt_cfg) for r, s in asks]
    with Bar("hindsight sampling", len(prompts), "answer", progress) as bar:
        if sampler is None:
            model.eval()
            outs = []
            for i in range(0, len(prompts), cfg.generation_batch_size):
                batch = prompts[i : i + cfg.generation_batch_size]
                outs += generate_ids(
                    model, tokenizer, batch, cfg.max_tokens, do_sample=True, temperature=cfg.temperature, top_p=1.0
                )
                bar.update(len(batch))
        else:
            outs = sampler(prompts, cfg.max_tokens, cfg.temperature, bar)
    pairs = []
    for (row, style), (ids, ended) in zip(asks, outs, strict=True):
        if not ended or len(ids) < cfg.min_tokens:
            continue
        text = tokenizer.decode(ids, skip_special_tokens=True)
        correct = is_correct(
            text,
            row["answer"],
            reward.grader,
            require_think_close=reward.require_think_close,
            timeout_s=reward.timeout_s,
            max_answer_chars=reward.max_answer_chars,
        )
        if cfg.correct_only and not correct:
            continue
        pairs.append(
            {
                "id": row["id"],
                "style": style,
                "tokens": len(ids),
                "correct": correct,
                "prompt": render(tokenizer, row["question"], len(ids), "exact", prompt_cfg),
                "completion": text,
                "completion_ids": ids,
            }
        )
    return pairs


def run(
    model: Any,
    tokenizer: Any,
    problems: Any,
    cfg: HindsightConfig,
    prompt_cfg: PromptConfig,
    reward: RewardConfig,
    out: Path,
    grpo_args: Any,
    generating: AbstractContextManager | None = None,
    sampler: Sampler | None = None,
) -> dict[str, Any]:
    """Sample and relabel the pairs, write ``out/hindsight/pairs.jsonl``, fine-tune ``model`` on them in place.

    Args:
        model: the PEFT model GRPO will train next (its LoRA is what changes).
        tokenizer: its tokenizer.
        problems: the training problems (``id``, ``question``, ``answer``).
        cfg: the ``hindsight`` section.
        prompt_cfg: the budget prompt wording.
        reward: grading settings, for the ``correct`` column (and ``cfg.correct_only``).
        out: the run's output folder.
        grpo_args (`trl.GRPOConfig`): the run's resolved trainer arguments: device, precision, seed, reporting,
            progress (``disable_tqdm``).
        generating: the context the sampling runs in (the loader's inference mode; Unsloth needs one).
        sampler: what samples the answers instead of ``model.generate`` (see :func:`sample_pairs`).

    Returns:
        What the summary records: pair counts, length quantiles, accuracy of the kept answers, the SFT loss (and
        its mean per epoch, over the logged steps) and the wall seconds of each part.
    """
    import datasets
    import torch
    from trl import SFTConfig, SFTTrainer

    start = time.time()
    torch.manual_seed(grpo_args.seed)
    with generating or nullcontext():
        pairs = sample_pairs(model, tokenizer, problems, cfg, prompt_cfg, reward, sampler, not grpo_args.disable_tqdm)
    sampled = min(cfg.problems, len(problems)) * len(cfg.styles)
    if not pairs:
        raise ConfigError(
            f"hindsight: none of {sampled} sampled answers ended within hindsight.max_tokens ({cfg.max_tokens}) "
            f"with at least hindsight.min_tokens ({cfg.min_tokens}){' and right' if cfg.correct_only else ''}"
        )
    folder = out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PAIRS_FILE).write_text("".join(json.dumps(p) + "\n" for p in pairs))
    lengths = sorted(p["tokens"] for p in pairs)
    quantiles = {f"q{int(q * 100)}": lengths[int(q * (len(lengths) - 1))] for q in (0, 0.1, 0.5, 0.9, 1)}
    sample_seconds = time.time() - start
    log.info("hindsight: kept %d of %d answers, lengths %s, %.0f s", len(pairs), sampled, quantiles, sample_seconds)

    micro = cfg.micro_batch_size or cfg.batch_size
    args = SFTConfig(
        output_dir=str(folder),
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=cfg.batch_size // micro,
        max_grad_norm=0.0,
        save_strategy="no",
        logging_steps=grpo_args.logging_steps,
        report_to=grpo_args.report_to,
        use_cpu=grpo_args.use_cpu,
        bf16=grpo_args.bf16,
        fp16=grpo_args.fp16,
        seed=grpo_args.seed,
        gradient_checkpointing=grpo_args.gradient_checkpointing,
        max_length=None,
        disable_tqdm=grpo_args.disable_tqdm,
    )
    rows = []
    for p in pairs:  # tokenized here, so the trainer sees exactly the sampled answer and its length
        prompt_ids = tokenizer(p["prompt"], add_special_tokens=False)["input_ids"]
        ids = p["completion_ids"]
        rows.append({"input_ids": prompt_ids + ids, "labels": [-100] * len(prompt_ids) + ids})
    dataset = datasets.Dataset.from_list(rows)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    follow_steps(trainer, "hindsight SFT")
    start = time.time()
    result = trainer.train()
    per_epoch = math.ceil(len(dataset) / cfg.batch_size)  # optimizer steps in one epoch
    by_epoch: dict[int, list[float]] = {}
    for e in trainer.state.log_history:
        if "loss" in e:
            by_epoch.setdefault((e["step"] - 1) // per_epoch, []).append(e["loss"])
    return {
        "sampled": sampled,
        "pairs": len(pairs),
        "lengths": quantiles,
        "kept_accuracy": statistics.fmean(p["correct"] for p in pairs),
        "sft_steps": trainer.state.global_step,
        "sft_loss": result.training_loss,
        "sft_loss_per_epoch": [round(statistics.fmean(v), 4) for _, v in sorted(by_epoch.items())],
        "sample_seconds": round(sample_seconds, 1),
        "sft_seconds": round(time.time() - start, 1),
    }

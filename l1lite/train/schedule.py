"""Training-side plumbing of the curriculum: the scheduled prompt dataset, the trainer callback, prompts per step.

Owns how a pure :class:`l1lite.train.curriculum.Curriculum` meets TRL: ``schedule_dataset`` builds the lazily
transformed rows GRPOTrainer walks in order, ``CurriculumCallback`` feeds logs back and saves the state in
each checkpoint, ``prompts_per_step`` reads a resolved GRPOConfig. Under several processes (accelerate, torchrun)
every rank holds the same curriculum and fetches only its share of each step's slots; the callback keeps the
ranks' curricula identical. Must not import the training runner (``l1lite.train.run``) or any CLI.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from transformers import TrainerCallback

from l1lite.core.config import ConfigError, PromptConfig
from l1lite.core.files import atomic_path
from l1lite.core.prompts import messages
from l1lite.train.curriculum import STATE_FILE, Curriculum

log = logging.getLogger(__name__)


def schedule_dataset(
    problems: datasets.Dataset,
    curriculum: Curriculum,
    prompt_cfg: PromptConfig,
    num_slots: int,
    seed: int,
) -> datasets.Dataset:
    """``num_slots`` training rows built lazily at fetch time from ``problems`` and ``curriculum``.

    Each row: ``prompt`` (conversational budget prompt), ``answer``, ``target_tokens``, ``budget_mode``,
    ``id``, ``slot``. Slots map to problems through a seeded permutation per epoch over the problems.

    Args:
        problems: problems with string columns ``id``, ``question``, ``answer``
            (:func:`l1lite.core.data.load_problems`).
        curriculum: gives each slot its target and budget mode when the row is fetched.
        prompt_cfg: budget prompt wording.
        num_slots: rows: ``max_steps`` times prompts per optimizer step.
        seed: seed of the per-epoch permutations.
    """
    if num_slots < 1 or len(problems) == 0:
        raise ConfigError(f"schedule_dataset needs num_slots >= 1 and problems, got {num_slots} and {len(problems)}")
    questions, answers, ids = (list(problems[c]) for c in ("question", "answer", "id"))
    n = len(questions)

    @lru_cache(maxsize=4)
    def permutation(epoch: int) -> np.ndarray:
        return np.random.default_rng([seed, epoch]).permutation(n)

    def transform(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in ("prompt", "answer", "target_tokens", "budget_mode", "id", "slot")}
        for slot in batch["slot"]:
            target, mode = curriculum.target(slot)
            epoch, pos = divmod(slot // 2 if curriculum.cfg.paired else slot, n)  # a pair shares its problem
            i = int(permutation(epoch)[pos])
            out["prompt"].append(messages(questions[i], target, mode, prompt_cfg))
            out["answer"].append(answers[i])
            out["target_tokens"].append(target)
            out["budget_mode"].append(mode)
            out["id"].append(ids[i])
            out["slot"].append(slot)
        return out

    return datasets.Dataset.from_dict({"slot": list(range(num_slots))}).with_transform(transform)


class CurriculumCallback(TrainerCallback):
    """Feeds trainer logs to the curriculum and saves its state in each checkpoint, the same on every rank.

    TRL averages the ``lcpo/*`` metrics over all processes before logging, so every rank observes the same
    value at the same step. The one rank-local input, the highest step handed out, is reduced to its maximum
    over the ranks before each observation, so a widening starts at the same step everywhere.
    """

    def __init__(self, curriculum: Curriculum):
        self.curriculum = curriculum

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return
        if args.world_size > 1:
            from accelerate.utils import gather_object

            self.curriculum.fetched_step = max(gather_object([self.curriculum.fetched_step]))
        stages = len(self.curriculum.stages)
        self.curriculum.observe(state.global_step, logs)
        if len(self.curriculum.stages) > stages:
            start, lo, hi = self.curriculum.stages[-1]
            log.info("curriculum: rank %d widened to [%d, %d] from step %d", args.process_index, lo, hi, start)

    def on_save(self, args, state, control, **kwargs):
        if args.world_size > 1:
            from accelerate import PartialState

            PartialState().wait_for_everyone()  # every rank has written its RNG state into the checkpoint
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            with atomic_path(folder / STATE_FILE, force=True) as tmp:
                tmp.write_text(json.dumps(self.curriculum.state_dict(), indent=2))


def prompts_per_step(args: Any) -> int:
    """Distinct prompts per optimizer step over all processes, for a resolved GRPOConfig, under TRL's RepeatSampler.

    GRPOConfig's ``generation_batch_size`` is ``per_device_train_batch_size * world_size * steps_per_generation``
    (the world size of the process resolving it), and RepeatSampler hands each generation round's prompts out in
    slot order, cut into contiguous per-rank shares: step ``k``'s prompts are slots ``k * n .. (k + 1) * n - 1``
    whatever the number of ranks.

    Args:
        args: the resolved trainer arguments (a ``trl.GRPOConfig``).
    """
    per_round = args.generation_batch_size // args.num_generations
    rounds_per_step = args.gradient_accumulation_steps / (args.steps_per_generation * args.num_iterations)
    if (per_round * rounds_per_step) % 1 or per_round * rounds_per_step < 1:
        raise ConfigError(
            f"trainer: {per_round} prompts per generation round over {args.steps_per_generation} x "
            f"{args.num_iterations} micro-steps do not make a whole number of prompts per optimizer step"
        )
    return int(per_round * rounds_per_step)

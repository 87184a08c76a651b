"""Target-length curriculum: which budget (and Exact/Max mode) each training prompt gets.

Training prompts are numbered by *slot*: slot ``s`` is consumed at optimizer step ``s // prompts_per_step``
(GRPOTrainer with ``shuffle_dataset=False`` and ``num_iterations=1`` walks the dataset in order, and all
``num_generations`` completions of a prompt come from the same slot). A slot's target is drawn from a
numpy Generator seeded by ``(seed, slot)`` inside the range the scheduler gives its step, so it is a
function of the slot: repeated fetches and resumed runs draw the same targets.

Owns the schedulers, the curriculum section's check (:func:`validate`) and the state saved in checkpoints.
Pure scheduling: imports only config; no transformers, datasets or TRL, and not the training side
(``l1lite.train.schedule``, which turns a :class:`Curriculum` into the trainer's dataset and callback) or
``l1lite.train.preview`` (its command).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from l1lite.core.config import ConfigError, CurriculumConfig

METRIC = "lcpo/rel_len_error"  # mean |n_y - target| / target, logged by the reward
STATE_FILE = "curriculum.json"  # saved in each checkpoint
SCHEDULERS = ("uniform", "choice", "linear", "staged", "adaptive")


def _check_range(lo: float, hi: float, where: str) -> None:
    if not 1 <= lo <= hi:
        raise ConfigError(f"{where}: need 1 <= lo <= hi, got lo={lo}, hi={hi}")


def _check_steps(rows: list[list[Any]], width: int, where: str) -> None:
    """``rows`` are ``[from_step, ...]`` lists of ``width`` items with strictly increasing from_step >= 0."""
    previous = -1
    for row in rows:
        if len(row) != width or row[0] <= previous:
            raise ConfigError(f"{where}: each entry must be {width} numbers with increasing from_step, got {row}")
        previous = row[0]


def validate(cfg: CurriculumConfig) -> None:
    """Raise ConfigError on an unusable curriculum section."""
    if cfg.scheduler not in SCHEDULERS:
        raise ConfigError(f"unknown curriculum.scheduler '{cfg.scheduler}' (valid: {', '.join(SCHEDULERS)})")
    _check_range(cfg.lo, cfg.hi, "curriculum.lo/hi")
    if cfg.scheduler == "choice":
        if not cfg.choices or not all(isinstance(t, int) and t >= 1 for t in cfg.choices):
            raise ConfigError(f"curriculum.choices must be a list of targets >= 1, got {cfg.choices}")
    if cfg.scheduler == "linear":
        if len(cfg.start) != 2 or len(cfg.end) != 2 or cfg.steps < 1:
            raise ConfigError("curriculum.start and curriculum.end must be [lo, hi] and curriculum.steps >= 1")
        _check_range(*cfg.start, "curriculum.start")
        _check_range(*cfg.end, "curriculum.end")
    if cfg.scheduler == "staged":
        if not cfg.stages or cfg.stages[0][0] != 0:
            raise ConfigError("curriculum.stages must be [[0, lo, hi], [from_step, lo, hi], ...]")
        _check_steps(cfg.stages, 3, "curriculum.stages")
        for _, lo, hi in cfg.stages:
            _check_range(lo, hi, "curriculum.stages")
    if cfg.scheduler == "adaptive":
        if not 0 < cfg.widen < 1 or cfg.threshold <= 0 or cfg.window < 1:
            raise ConfigError("curriculum: adaptive needs 0 < widen < 1, threshold > 0, window >= 1")
        if not cfg.lo <= cfg.natural <= cfg.hi:
            raise ConfigError(f"curriculum: adaptive needs lo <= natural <= hi, got natural={cfg.natural}")
    _check_steps(cfg.max_ratio_stages, 2, "curriculum.max_ratio_stages")
    for ratio in [cfg.max_ratio] + [r for _, r in cfg.max_ratio_stages]:
        if not 0 <= ratio <= 1:
            raise ConfigError(f"curriculum max ratio must be in [0, 1], got {ratio}")


def highest_target(cfg: CurriculumConfig) -> int:
    """The largest target the curriculum can draw (of a section :func:`validate` accepts)."""
    if cfg.scheduler == "choice":
        return max(cfg.choices)
    if cfg.scheduler == "linear":
        return max(cfg.start[1], cfg.end[1])
    if cfg.scheduler == "staged":
        return max(hi for _, _, hi in cfg.stages)
    return cfg.hi


class Curriculum:
    """Targets per slot for one training run; ``observe`` feeds the adaptive scheduler."""

    def __init__(self, cfg: CurriculumConfig, prompts_per_step: int):
        validate(cfg)
        if prompts_per_step < 1:
            raise ConfigError(f"prompts_per_step must be >= 1, got {prompts_per_step}")
        if cfg.paired and prompts_per_step % 2:
            raise ConfigError(f"curriculum.paired needs an even number of prompts per step, got {prompts_per_step}")
        self.cfg = cfg
        self.prompts_per_step = prompts_per_step
        # adaptive: ranges in force from a step on; a widening only touches steps not yet handed out
        self.stages = [[0, *self._clamp(cfg.natural * cfg.widen, cfg.natural / cfg.widen)]]
        self.errors: list[float] = []  # last `window` METRIC values measured in the newest stage
        self.fetched_step = -1  # highest step whose targets were handed out

    def _clamp(self, lo: float, hi: float) -> list[int]:
        return [max(self.cfg.lo, round(lo)), min(self.cfg.hi, round(hi))]

    def range_at(self, step: int) -> tuple[int, int]:
        """Inclusive ``(lo, hi)`` target range at optimizer step ``step``."""
        cfg = self.cfg
        if cfg.scheduler == "uniform":
            return cfg.lo, cfg.hi
        if cfg.scheduler == "choice":
            return min(cfg.choices), max(cfg.choices)
        if cfg.scheduler == "linear":
            frac = min(1.0, step / cfg.steps)
            return tuple(round(a + frac * (b - a)) for a, b in zip(cfg.start, cfg.end, strict=True))
        stages = cfg.stages if cfg.scheduler == "staged" else self.stages
        _, lo, hi = [s for s in stages if s[0] <= step][-1]
        return int(lo), int(hi)

    def max_ratio_at(self, step: int) -> float:
        """Share of prompts in "max" mode at ``step``."""
        ratios = [r for from_step, r in self.cfg.max_ratio_stages if from_step <= step]
        return ratios[-1] if ratios else self.cfg.max_ratio

    def draw(self, slot: int) -> tuple[int, str]:
        """``(target_tokens, budget_mode)`` for ``slot`` without recording the fetch.

        ``paired``: an odd slot mirrors the slot before it (same mode, target ``lo * hi / t`` in the same range;
        ``choice``: the choice nearest to it by ratio), so the same problem is asked with a short and a long
        budget in the same step.
        """
        step = slot // self.prompts_per_step
        lo, hi = self.range_at(step)
        choices = self.cfg.choices if self.cfg.scheduler == "choice" else None
        if self.cfg.paired and slot % 2:
            target, mode = self.draw(slot - 1)
            mirror = lo * hi / target
            if choices:
                return min(choices, key=lambda t: abs(math.log(t / mirror))), mode
            return min(hi, max(lo, round(mirror))), mode
        rng = np.random.default_rng([self.cfg.seed, slot])
        target = int(rng.choice(choices)) if choices else int(rng.integers(lo, hi + 1))
        mode = "max" if rng.random() < self.max_ratio_at(step) else "exact"
        return target, mode

    def target(self, slot: int) -> tuple[int, str]:
        """``(target_tokens, budget_mode)`` for dataset slot ``slot`` (step ``slot // prompts_per_step``)."""
        self.fetched_step = max(self.fetched_step, slot // self.prompts_per_step)
        return self.draw(slot)

    def observe(self, step: int, logs: dict[str, Any]) -> None:
        """Feed trainer logs at ``global_step == step`` (steps ``< step`` are done); adaptive may widen."""
        value = logs.get(METRIC)
        cfg = self.cfg
        if cfg.scheduler != "adaptive" or value is None or step - 1 < self.stages[-1][0]:
            return
        self.errors = [*self.errors, float(value)][-cfg.window :]  # the newest window
        lo, hi = self.stages[-1][1:]
        if len(self.errors) < cfg.window or (lo, hi) == (cfg.lo, cfg.hi):
            return
        if statistics.fmean(self.errors) < cfg.threshold:
            self.stages.append([max(step, self.fetched_step + 1), *self._clamp(lo * cfg.widen, hi / cfg.widen)])
            self.errors = []

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable state (for ``curriculum.json`` in checkpoints)."""
        return {
            "scheduler": self.cfg.scheduler,
            "seed": self.cfg.seed,
            "prompts_per_step": self.prompts_per_step,
            "stages": self.stages,
            "errors": self.errors,
            "fetched_step": self.fetched_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; the scheduler, seed and prompts per step must match."""
        expected = {"scheduler": self.cfg.scheduler, "seed": self.cfg.seed, "prompts_per_step": self.prompts_per_step}
        for key, mine in expected.items():
            if state.get(key) != mine:
                raise ConfigError(f"curriculum state has {key}={state.get(key)!r}, this run has {mine!r}")
        self.stages = [list(s) for s in state["stages"]]
        self.errors = list(state["errors"])
        self.fetched_step = int(state["fetched_step"])

    def samples(self, steps: int) -> list[tuple[int, int, str]]:
        """``(step, target, mode)`` for every slot of steps ``0 .. steps-1``."""
        return [(s // self.prompts_per_step, *self.draw(s)) for s in range(steps * self.prompts_per_step)]

    def preview(self, steps: int, buckets: int = 10) -> list[dict[str, Any]]:
        """Per step range: min / median / max target and the share of "max" mode prompts."""
        if steps < 1 or buckets < 1:
            raise ConfigError(f"preview needs steps >= 1 and buckets >= 1, got {steps} and {buckets}")
        width = math.ceil(steps / buckets)
        rows = []
        drawn = self.samples(steps)
        for first in range(0, steps, width):
            last = min(steps, first + width) - 1
            chunk = [(t, m) for s, t, m in drawn if first <= s <= last]
            targets = [t for t, _ in chunk]
            rows.append(
                {
                    "steps": (first, last),
                    "min": min(targets),
                    "median": statistics.median(targets),
                    "max": max(targets),
                    "max_share": sum(m == "max" for _, m in chunk) / len(chunk),
                }
            )
        return rows


def load_curriculum_state(checkpoint_dir: str | Path) -> dict[str, Any] | None:
    """The curriculum state saved in ``checkpoint_dir``, or None if it has none."""
    path = Path(checkpoint_dir) / STATE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON ({e})") from None

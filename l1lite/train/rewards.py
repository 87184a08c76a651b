"""LCPO rewards (L1 paper) as TRL reward callables, with length-control training metrics.

Exact: r = 1[correct] - alpha * |target - n|.  Max: r = 1[correct] * clip(alpha * (target - n) + delta, 0, 1).
``n`` is the number of generated tokens (``completion_ids``), thinking and answer together.

Owns the reward callables, the reward section's check (:func:`check_reward`) and the ``lcpo/*`` metrics.
Imports config, grading, prompts and r1; must not import TRL, the curriculum or the training run.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from l1lite.core import prompts
from l1lite.core.config import ConfigError, RewardConfig
from l1lite.core.grading import check_grader, count_boxed, is_correct, load_callable
from l1lite.core.r1 import split_thinking

MODES = ("exact", "max", "dual")
# (suffix, lo, hi): targets with lo <= target < hi
BUCKETS = (("<512", 0, 512), ("512-1024", 512, 1024), ("1024-2048", 1024, 2048), (">2048", 2048, float("inf")))


def lcpo_exact(correct: bool, n_tokens: int, target: int, alpha: float = 0.0003) -> float:
    """LCPO-Exact: 1[correct] - alpha * |target - n_tokens|.

    Args:
        correct: whether the answer is right.
        n_tokens: generated tokens (thinking and answer).
        target: the budget written into the prompt.
        alpha: price of one token off the target (the paper's).
    """
    return float(bool(correct)) - alpha * abs(target - n_tokens)


def lcpo_max(correct: bool, n_tokens: int, target: int, alpha: float = 0.001, delta: float = 0.5) -> float:
    """LCPO-Max: 1[correct] * clip(alpha * (target - n_tokens) + delta, 0, 1).

    Args:
        correct: whether the answer is right.
        n_tokens: generated tokens (thinking and answer).
        target: the budget written into the prompt (a maximum).
        alpha: reward slope per token under (or over) the target (the paper's).
        delta: reward of a correct answer exactly at the target, before clipping to [0, 1].
    """
    return float(bool(correct)) * min(1.0, max(0.0, alpha * (target - n_tokens) + delta))


def completion_text(completion: str | list[dict[str, Any]]) -> str:
    """Text of a plain-string or conversational (list of role/content messages) completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and all(isinstance(m, dict) and "content" in m for m in completion):
        return "".join(m["content"] for m in completion if isinstance(m["content"], str))
    raise TypeError(f"completion must be a string or a list of message dicts, got {type(completion).__name__}")


def length_metrics(
    n_tokens: Sequence[int], targets: Sequence[int], modes: Sequence[str], correct: Sequence[bool]
) -> dict[str, float]:
    """The ``lcpo/*`` training metrics of one batch (over_budget and buckets only where they have rows).

    Args:
        n_tokens: generated tokens per completion.
        targets: each completion's target.
        modes: each completion's budget mode, ``"exact"`` or ``"max"`` (``over_budget`` counts the max ones).
        correct: each completion's grade.
    """
    rel = [abs(n - t) / t for n, t in zip(n_tokens, targets, strict=True)]
    metrics = {
        "lcpo/accuracy": sum(map(bool, correct)) / len(correct),
        "lcpo/rel_len_error": sum(rel) / len(rel),
        "lcpo/within_10pct": sum(r <= 0.1 for r in rel) / len(rel),
        "lcpo/mean_tokens": sum(n_tokens) / len(n_tokens),
    }
    if len(set(targets)) > 1 and len(set(n_tokens)) > 1:  # does length follow the target? (1: a perfect dial)
        metrics["lcpo/target_len_corr"] = statistics.correlation(targets, n_tokens)
    over = [n > t for n, t, m in zip(n_tokens, targets, modes, strict=True) if m == "max"]
    if over:
        metrics["lcpo/over_budget"] = sum(over) / len(over)
    for suffix, lo, hi in BUCKETS:
        bucket = [r for r, t in zip(rel, targets, strict=True) if lo <= t < hi]
        if bucket:
            metrics[f"lcpo/rel_len_error/{suffix}"] = sum(bucket) / len(bucket)
    return metrics


def _row_modes(mode: str, budget_mode: Sequence[str] | None, n: int) -> list[str]:
    if mode != "dual":
        return [mode] * n
    if budget_mode is None:
        raise ValueError("reward mode 'dual' needs a 'budget_mode' column ('exact' or 'max' per row)")
    bad = sorted({m for m in budget_mode if m not in prompts.MODES})
    if bad:
        raise ValueError(f"budget_mode column has {bad!r}; expected 'exact' or 'max'")
    return list(budget_mode)


def _lcpo_reward(cfg: RewardConfig, mode: str) -> Callable[..., list[float]]:
    def reward(
        completions: list,
        completion_ids: list[list[int]],
        answer: list[str],
        target_tokens: list[int],
        budget_mode: list[str] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        modes = _row_modes(mode, budget_mode, len(completions))
        n_tokens = [len(ids) for ids in completion_ids]
        correct = [
            is_correct(
                completion_text(c),
                gold,
                cfg.grader,
                require_think_close=cfg.require_think_close,
                timeout_s=cfg.timeout_s,
                max_answer_chars=cfg.max_answer_chars,
            )
            for c, gold in zip(completions, answer, strict=True)
        ]
        rewards = [
            lcpo_exact(ok, n, t, cfg.alpha_exact) if m == "exact" else lcpo_max(ok, n, t, cfg.alpha_max, cfg.delta)
            for ok, n, t, m in zip(correct, n_tokens, target_tokens, modes, strict=True)
        ]
        if log_metric is not None:
            for name, value in length_metrics(n_tokens, target_tokens, modes, correct).items():
                log_metric(name, value)
        return rewards

    reward.__name__ = reward.__qualname__ = f"lcpo_{mode}"
    return reward


def _format_reward(cfg: RewardConfig) -> Callable[..., list[float]]:
    def format_reward(completions: list, **kwargs: Any) -> list[float]:
        """format_weight if ``</think>`` is closed and the answer has exactly one box, else 0."""
        out = []
        for c in completions:
            _, answer, closed = split_thinking(completion_text(c))
            out.append(cfg.format_weight if closed and count_boxed(answer) == 1 else 0.0)
        return out

    format_reward.__name__ = format_reward.__qualname__ = "format"
    return format_reward


def check_reward(cfg: RewardConfig) -> None:
    """Raise :class:`ConfigError` for an unusable reward section (mode, limits, grader, custom rewards)."""
    if cfg.mode not in MODES:
        raise ConfigError(f"reward.mode '{cfg.mode}' is not one of {', '.join(MODES)}")
    if cfg.timeout_s <= 0 or cfg.max_answer_chars <= 0:
        raise ConfigError("reward.timeout_s and reward.max_answer_chars must be positive")
    check_grader(cfg.grader)
    for spec in cfg.custom:
        load_callable(spec, "reward.custom")


def build_reward_funcs(cfg: RewardConfig) -> list[Callable[..., list[float]]]:
    """TRL reward callables for ``cfg``: the LCPO reward, the format reward if weighted, then cfg.custom."""
    check_reward(cfg)
    funcs = [_lcpo_reward(cfg, cfg.mode)] + ([_format_reward(cfg)] if cfg.format_weight else [])
    return funcs + [load_callable(spec, "reward.custom") for spec in cfg.custom]

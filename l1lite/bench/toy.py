"""Synthetic multi-step arithmetic for the dial benchmark: checkable answers, reasoning short or long.

A problem is a chain of single-digit additions and subtractions (``Compute 7+5-3.``). Its trace opens by
restating the prompt's budget next to a length plan (``48<64``: budget 48, plan 64), works one line per
operation (``7+5=12``), then adds check lines restating the result and counting down to 1 (``3:9``
``2:9`` ``1:9``) until the trace is about as long as planned, closes ``</think>`` and boxes the answer.
Digits are one token each with the tiny model's tokenizer, so a check line is 4 tokens (5 from ``10:``
up): a two-operation trace is at least 25 tokens and grows in steps of 4-5 (:func:`planner_floor`).

The warm-up draws the plan at random, independent of the budget: it teaches the model to restate the
budget and to keep its own plan, not to plan by the budget. Tying the plan to the budget is left to LCPO.

Owns the toy problems, their traces and the warm-up rows; imports config, prompts and r1, must not import
training, evaluation or a model library.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable
from pathlib import Path

from l1lite.core.config import PromptConfig
from l1lite.core.prompts import MODES, render
from l1lite.core.r1 import THINK_CLOSE, count_tokens

Step = tuple[int, str, int, int]  # (left, op, right, result)


def make_problem(rng: random.Random, min_ops: int = 1, max_ops: int = 3, cap: int = 30) -> dict:
    """A random chain of ``min_ops..max_ops`` operations on digits 1..9 whose running value stays in 0..cap.

    Args:
        rng: the source of randomness.
        min_ops: fewest operations.
        max_ops: most operations.
        cap: largest running value (and first operand at most ``min(9, cap)``).

    Returns:
        ``{"problem": "Compute 7+5-3.", "answer": "9"}``.
    """
    value = rng.randint(1, min(9, cap))
    text = str(value)
    for _ in range(rng.randint(min_ops, max_ops)):
        if value == 0 or (value < cap and rng.random() < 0.5):
            b = rng.randint(1, min(9, cap - value))
            value, text = value + b, f"{text}+{b}"
        else:
            b = rng.randint(1, min(9, value))
            value, text = value - b, f"{text}-{b}"
    return {"problem": f"Compute {text}.", "answer": str(value)}


def parse_steps(problem: str) -> list[Step]:
    """The operations of a ``Compute a+b-c.`` problem with their running results."""
    body = problem.removeprefix("Compute ").rstrip(".")
    tokens: list[str] = []
    for ch in body:
        if ch in "+-":
            tokens.append(ch)
        elif ch.isdigit():
            tokens.append(tokens.pop() + ch if tokens and tokens[-1].isdigit() else ch)
        else:
            raise ValueError(f"not a toy problem: {problem!r}")
    value, steps = int(tokens[0]), []
    for op, b in zip(tokens[1::2], tokens[2::2], strict=True):
        result = value + int(b) if op == "+" else value - int(b)
        steps.append((value, op, int(b), result))
        value = result
    return steps


def check_lines(steps: list[Step], n: int) -> list[str]:
    """``n`` check lines counting down ``n:`` .. ``1:``, each restating the result, so the line before
    ``</think>`` always holds the answer and a long trace is no harder to answer from than a short one."""
    return [f"{n - i}:{steps[-1][3]}\n" for i in range(n)]


def opening(budget: int, plan: int) -> str:
    """``48<64``: the budget restated, how it compares to the plan, the plan (6 tokens)."""
    return f"{budget}{'<' if budget < plan else '>' if budget > plan else '='}{plan}\n"


def trace(problem: str, checks: int, budget: int | None = None, plan: int | None = None) -> str:
    """R1-format completion without EOS: the opening line (``48<64``, if budget and plan are given),
    reasoning lines, ``checks`` check lines, ``</think>``, boxed answer.

    Args:
        problem: a ``Compute a+b-c.`` problem.
        checks: check lines before ``</think>``.
        budget: the prompt's budget, restated in the opening line.
        plan: the trace's planned length, stated in the opening line.
    """
    steps = parse_steps(problem)
    lines = [opening(budget, plan)] if budget is not None and plan is not None else []
    lines += [f"{a}{op}{b}={c}\n" for a, op, b, c in steps] + check_lines(steps, checks)
    return "".join(lines) + f"{THINK_CLOSE}\n\n\\boxed{{{steps[-1][3]}}}"


def planned_trace(problem: str, budget: int, plan: int, count: Callable[[str], int], max_checks: int) -> str:
    """The trace with 0..max_checks checks whose length in tokens (``count``) is nearest ``plan``.

    A trace's length is its opening line's plus the rest's: the opening ends in a newline before a digit, where a
    Qwen2-style tokenizer splits, so ``count`` sees a few short texts that repeat across traces (cache it).

    Args:
        problem: a ``Compute a+b-c.`` problem.
        budget: the prompt's budget, restated in the opening line.
        plan: the wanted length in tokens.
        count: tokens in a text (the model's tokenizer).
        max_checks: most check lines.
    """
    head = count(opening(budget, plan))

    def length(checks: int) -> int:
        return head + count(trace(problem, checks))

    lo, hi = 0, max_checks  # length grows with checks: bisect for the first trace reaching the plan
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if length(mid) < plan else (lo, mid)
    best = min(sorted({max(0, lo - 1), lo}), key=lambda n: abs(length(n) - plan))
    return trace(problem, best, budget, plan)


def planner_floor(problems: list[dict], budget: int, count: Callable[[str], int], max_checks: int) -> float:
    """Mean relative length error of a perfect planner at ``budget``: every trace planned to the budget.

    Check lines move the length in steps of 4-5 tokens and no trace is shorter than its reasoning, so even
    a model that always plans by the budget misses it by this much; a goal below it cannot be reached.

    Args:
        problems: toy problems (rows with ``problem``).
        budget: the budget, also the plan.
        count: tokens in a text (the model's tokenizer).
        max_checks: most check lines.
    """
    errors = [abs(count(planned_trace(p["problem"], budget, budget, count, max_checks)) - budget) for p in problems]
    return sum(errors) / len(errors) / budget


def draw_problems(n: int, seed: int, exclude: set[str] | None = None, **kwargs) -> list[dict]:
    """``n`` distinct problems (rows ``id``, ``problem``, ``answer``) not in ``exclude`` (``kwargs``: make_problem)."""
    rng = random.Random(seed)
    seen = set(exclude or ())
    rows: list[dict] = []
    for _ in range(100 * n):
        p = make_problem(rng, **kwargs)
        if p["problem"] not in seen:
            seen.add(p["problem"])
            rows.append({"id": f"toy-{seed}-{len(rows)}", **p})
        if len(rows) == n:
            return rows
    raise ValueError(f"could not draw {n} distinct toy problems with {kwargs}")


def facts(cap: int) -> list[dict]:
    """Every one-operation problem on digits 1..9 whose values stay in 0..``cap`` (rows as :func:`draw_problems`)."""
    texts = [f"Compute {a}{op}{b}." for a in range(1, min(9, cap) + 1) for op in "+-" for b in range(1, 10)]
    rows = [{"problem": t, "answer": str(parse_steps(t)[0][3])} for t in texts]
    return [{"id": f"fact-{i}", **r} for i, r in enumerate(r for r in rows if 0 <= int(r["answer"]) <= cap)]


def write_jsonl(rows: list[dict], path: str | Path) -> Path:
    """Write ``rows`` as JSON lines (the format ``l1lite.core.data.load_problems`` reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def warmup_rows(
    problems: list[dict],
    n: int,
    tokenizer,
    prompt_cfg: PromptConfig,
    budgets: tuple[int, int],
    max_checks: int,
    seed: int,
) -> list[dict[str, str]]:
    """``n`` prompt/completion rows for the format warm-up over ``problems`` (drawn with replacement).

    Each row's prompt carries a random budget in ``budgets`` (exact or max wording); its trace keeps a plan
    drawn independently from the same range: before RL the length does not depend on the budget.

    Args:
        problems: toy problems (rows with ``problem``).
        n: rows to make.
        tokenizer: the model's HF tokenizer (renders the chat prompt and counts the trace's tokens).
        prompt_cfg: budget prompt wording.
        budgets: inclusive range of budgets and plans.
        max_checks: most check lines in a trace.
        seed: seed of the draws.
    """
    rng = random.Random(seed)

    @functools.cache
    def count(text: str) -> int:
        return count_tokens(tokenizer, text)

    rows = []
    for _ in range(n):
        p = rng.choice(problems)
        budget, mode, plan = rng.randint(*budgets), rng.choice(MODES), rng.randint(*budgets)
        rows.append(
            {
                "prompt": render(tokenizer, p["problem"], budget, mode, prompt_cfg),
                "completion": planned_trace(p["problem"], budget, plan, count, max_checks),
            }
        )
    return rows

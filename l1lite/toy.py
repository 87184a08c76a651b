"""Synthetic multi-step arithmetic for the dial benchmark: checkable answers, reasoning short or long.

A problem is a chain of single-digit additions and subtractions (``Compute 7+5-3.``). Its reasoning
is one line per operation (``7+5=12``), optionally followed by verification lines that undo and redo
the chain (``12-3=9`` ... ``9+3=12``), so a correct trace can stop after the last operation or go on
checking for as long as it likes. Each line is a handful of tokens with the tiny model's tokenizer
(digits are split one per token).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from l1lite.config import PromptConfig
from l1lite.prompts import MODES, render
from l1lite.tiny import THINK_CLOSE

Step = tuple[int, str, int, int]  # (left, op, right, result)


def make_problem(rng: random.Random, min_ops: int = 1, max_ops: int = 3, cap: int = 30) -> dict:
    """A random chain of ``min_ops..max_ops`` operations on digits 1..9 whose running value stays in 0..cap."""
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


def _line(a: int, op: str, b: int, c: int) -> str:
    return f"{a}{op}{b}={c}\n"


def verification_lines(steps: list[Step], n: int) -> list[str]:
    """``n`` check lines counting down ``n:`` .. ``1:``: undo the chain from the end, redo it from the start, ..."""
    undo = [_line(c, "-" if op == "+" else "+", b, a) for a, op, b, c in reversed(steps)]
    redo = [_line(*s) for s in steps]
    cycle = undo + redo
    return [f"{n - i}:{cycle[i % len(cycle)]}" for i in range(n)]


def trace(problem: str, checks: int, budget: int | None = None) -> str:
    """R1-format completion without EOS: the budget restated (``128 tokens``, if given), reasoning lines,
    ``checks`` verification lines, ``</think>``, boxed answer."""
    steps = parse_steps(problem)
    lines = [f"{budget} tokens\n"] if budget is not None else []
    lines += [_line(*s) for s in steps] + verification_lines(steps, checks)
    return "".join(lines) + f"{THINK_CLOSE}\n\n\\boxed{{{steps[-1][3]}}}"


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


def write_jsonl(rows: list[dict], path: str | Path) -> Path:
    """Write ``rows`` as JSON lines (the format ``l1lite.data.load_problems`` reads)."""
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

    Each row's prompt carries a random budget in ``budgets`` (exact or max wording) and its trace a random
    number of verification lines in ``0..max_checks``: before RL the length does not depend on the budget.
    The trace restates the budget first, as reasoning models do: it only puts the number next to the place
    where the length is decided (after the last operation); the warm-up does not tie the two.
    """
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        p = rng.choice(problems)
        budget, mode = rng.randint(*budgets), rng.choice(MODES)
        rows.append(
            {
                "prompt": render(tokenizer, p["problem"], budget, mode, prompt_cfg),
                "completion": trace(p["problem"], rng.randint(0, max_checks), budget),
            }
        )
    return rows

"""Grading throughput: graded R1-style completions per second on 2 cores.

Completions are built from the shipped math set: a few KB of step-by-step thinking, ``</think>``,
then a boxed answer in the forms R1 models write (canonical, equivalent, decorated, wrong, truncated,
several boxes). Usage: ``python benchmarks/grading.py [--n 20000] [--out result.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from fractions import Fraction
from importlib import resources

from l1lite.core.files import atomic_path
from l1lite.core.grading import extract_boxed, fast_verdict, is_correct, verify_math
from l1lite.core.r1 import split_thinking

SENTENCES = [
    "Okay, so I need to solve this problem step by step.",
    "Let me write down what is given first.",
    "Hmm, wait, let me double-check that computation.",
    "So if I substitute the values, I get {a} + {b} = {c}.",
    "Alternatively, I could multiply first: {a} times {b} is {p}.",
    "That seems right, but let me verify it another way.",
    "Wait, no, I think I made a mistake in the sign there.",
    "Let me recompute: $\\frac{{{a}}}{{{b}}}$ simplifies since the gcd is small.",
    "So the intermediate result is {c}, which we carry into the next step.",
    "Therefore, combining everything, we get the final value.",
]


def _forms(gold: str, rng: random.Random) -> tuple[str, bool]:
    """One boxed-answer text for ``gold`` and whether it should grade correct."""
    value = Fraction(gold.replace("\\frac{", "").replace("}{", "/").rstrip("}"))
    wrong = value + rng.choice([1, -1, 2, Fraction(1, 2)])
    kind = rng.random()
    if kind < 0.45:
        return f"\\boxed{{{gold}}}", True
    if kind < 0.70:
        return f"\\boxed{{{_latex(wrong)}}}", False
    if kind < 0.80:  # an equivalent form
        forms = [f"\\dfrac{{{value.numerator}}}{{{value.denominator}}}", f"{value.numerator}/{value.denominator}"]
        if value.denominator == 1:
            forms = [f"{value.numerator}^\\circ", f"\\${value.numerator}", f"{value.numerator}."]
        elif 10**6 % value.denominator == 0:
            forms.append(str(float(value)))
        return f"\\boxed{{{rng.choice(forms)}}}", True
    if kind < 0.85:  # several boxes, the last one counts
        return f"\\boxed{{{_latex(wrong)}}}, no: correcting that, \\boxed{{{gold}}}", True
    if kind < 0.90:  # unsimplified symbolic forms only math-verify settles
        root = f"\\sqrt{{{value.numerator**2}}}"
        return f"\\boxed{{{'-' if value < 0 else ''}\\frac{{{root}}}{{{value.denominator}}}}}", True
    return "", False  # truncated: the thinking never closed


def _latex(v: Fraction) -> str:
    if v.denominator == 1:
        return str(v.numerator)
    sign = "-" if v < 0 else ""
    return f"{sign}\\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"


def make_completions(n: int, seed: int = 0) -> list[tuple[str, str, bool]]:
    """``n`` (completion, gold, expected) triples built from the shipped math set."""
    text = resources.files("l1lite.assets").joinpath("math_small.jsonl").read_text()
    rows = [json.loads(line) for line in text.splitlines()]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        row = rng.choice(rows)
        a, b = rng.randint(2, 999), rng.randint(2, 999)
        words = [
            rng.choice(SENTENCES).format(a=a, b=b, c=a + b, p=a * b) for _ in range(rng.randint(20, 120))
        ]  # ~1-6 KB of thinking
        thinking = f"{row['problem']}\n" + " ".join(words)
        answer, expected = _forms(row["answer"], rng)
        if not answer:
            out.append((thinking + " So the answer is probably", row["answer"], False))
            continue
        completion = f"{thinking}\n</think>\n\nWorking through the steps above gives the result.\n\n{answer}"
        out.append((completion, row["answer"], expected))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="completions to grade")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])  # inherited by the grading workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    data = make_completions(args.n, args.seed)
    start = time.perf_counter()
    verify_math("\\sqrt{2}", "\\frac{2}{\\sqrt{2}}")  # start the math-verify worker processes
    startup_s = time.perf_counter() - start

    figures = {"n": len(data), "cores": cores, "worker_startup_s": round(startup_s, 3)}
    for label, cached in (("cached", True), ("uncached", False)):
        verify_math.cache_clear()
        mismatches = 0
        start = time.perf_counter()
        for completion, gold, expected in data:
            mismatches += is_correct(completion, gold) != expected
            if not cached:
                verify_math.cache_clear()
        seconds = time.perf_counter() - start
        figures[f"graded_per_s_{label}"] = round(len(data) / seconds, 1)
        figures[f"mismatches_{label}"] = mismatches
    answers = [(extract_boxed(split_thinking(c)[1]), gold) for c, gold, _ in data]
    slow = sum(fast_verdict(gold, boxed) is None for boxed, gold in answers if boxed)
    figures["math_verify_share"] = round(slow / len(data), 4)
    figures["mean_completion_chars"] = round(sum(len(c) for c, _, _ in data) / len(data))

    print(
        f"grading: {figures['graded_per_s_cached']:.0f} completions/s with the verdict cache, "
        f"{figures['graded_per_s_uncached']:.0f}/s without, on {cores} cores "
        f"({figures['math_verify_share']:.1%} need math-verify; worker start {startup_s:.2f} s; "
        f"{figures['mismatches_cached']} unexpected verdicts)"
    )
    if args.out:
        with atomic_path(args.out, args.force) as tmp:
            tmp.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""The dial benchmark, reduced: real warm-up, GRPO and eval on the toy task; RL must move the dial."""

from __future__ import annotations

import json
import os

import pytest

from l1lite import toy
from l1lite.bench import ARMS, BEFORE, QUICK, bench_dial
from l1lite.config import ConfigError


def test_toy_traces_are_correct_and_their_length_is_free():
    problems = toy.draw_problems(50, 0, cap=9, max_ops=2)
    assert len({p["problem"] for p in problems}) == 50
    for p in problems:
        steps = toy.parse_steps(p["problem"])
        assert str(steps[-1][3]) == p["answer"] and all(0 <= s[3] <= 9 for s in steps)
        short, long = toy.trace(p["problem"], 0), toy.trace(p["problem"], 5)
        for text in (short, long):
            assert text.endswith(f"</think>\n\n\\boxed{{{p['answer']}}}")
        assert long.count("\n") == short.count("\n") + 5 and "5:" in long and "6:" not in long
    held_out = toy.draw_problems(10, 1, exclude={p["problem"] for p in problems}, cap=9, max_ops=2)
    assert not {p["problem"] for p in held_out} & {p["problem"] for p in problems}


def test_bad_budgets_are_refused(tmp_path):
    from dataclasses import replace

    with pytest.raises(ConfigError, match="4x"):
        bench_dial(tmp_path, replace(QUICK, budgets=[32, 64]))


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("L1LITE_DIAL_TEST") != "1",
    reason="opt-in (L1LITE_DIAL_TEST=1) until issue 10 is solved: short GRPO runs have not yet moved the toy dial",
)
def test_reduced_benchmark_moves_the_dial(tmp_path):
    summary = bench_dial(tmp_path, QUICK, minutes=30)
    assert json.loads((tmp_path / "summary.json").read_text())["goal"].keys() == set(ARMS)
    assert (tmp_path / "report.md").is_file() and (tmp_path / "plots-exact" / "length.png").is_file()
    before = summary["results"][BEFORE]["dial_spread"]
    for arm in ARMS:
        assert summary["results"][arm]["dial_spread"] > before, (arm, summary["results"][arm]["rows"])

"""The dial benchmark, reduced: real warm-up, GRPO and eval on the toy task; RL must move the dial."""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

import pytest

from l1lite.bench import toy
from l1lite.bench.dial import ARMS, BEFORE, L1_EXACT, QUICK, DialSettings, goal, markdown, run_bench
from l1lite.core.config import ConfigError

PNG = b"\x89PNG\r\n\x1a\n"


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


def test_warmup_traces_keep_a_plan_drawn_apart_from_the_budget(tiny_model_dir):
    from transformers import AutoTokenizer

    from l1lite.core.config import PromptConfig
    from l1lite.core.r1 import count_tokens

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    problems = toy.draw_problems(40, 0, cap=9, max_ops=2)
    rows = toy.warmup_rows(problems, 400, tokenizer, PromptConfig(), (16, 99), 24, seed=0)
    budgets, plans = [], []
    for r in rows:
        budget = int(r["prompt"].split("Think for ")[1].split()[-2])
        stated, sign, plan = re.match(r"(\d+)([<>=])(\d+)\n", r["completion"]).groups()  # 48<64
        assert int(stated) == budget and sign == "<>="[(budget > int(plan)) + 2 * (budget == int(plan))]
        n = len(tokenizer(r["completion"], add_special_tokens=False)["input_ids"])
        assert abs(n - int(plan)) <= 3 or (n > int(plan) and "1:" not in r["completion"]), r["completion"]
        if len(plans) < 100:  # the nearest of all traces, each counted whole (rows count the opening apart)
            problem = re.search(r"Compute [\d+-]+\.", r["prompt"])[0]
            whole = [toy.trace(problem, k, budget, int(plan)) for k in range(25)]
            assert abs(n - int(plan)) == min(abs(m - int(plan)) for m in count_tokens(tokenizer, whole))
        budgets.append(budget)
        plans.append(int(plan))
    assert abs(statistics.correlation(budgets, plans)) < 0.15  # the warm-up does not tie length to budget
    assert min(plans) < 30 and max(plans) > 85


def test_the_default_budgets_can_be_met_in_the_toy_format(tiny_model_dir):
    from functools import partial

    from transformers import AutoTokenizer

    from l1lite.core.r1 import count_tokens

    s = DialSettings()
    count = partial(count_tokens, AutoTokenizer.from_pretrained(tiny_model_dir))
    kw = {"cap": s.cap, "min_ops": s.min_ops, "max_ops": s.max_ops}
    train = {p["problem"] for p in toy.draw_problems(s.train_problems, 0, **kw)}
    problems = toy.draw_problems(s.eval_problems, 1000, exclude=train, **kw)  # held out as the benchmark does
    assert toy.planner_floor(problems, 24, count, s.max_checks) > s.error_goal  # two-operation traces: >= 25 tokens
    assert all(toy.planner_floor(problems, b, count, s.max_checks) < s.error_goal for b in s.budgets)


def test_the_report_scores_the_length_goal_apart_from_the_accuracy():
    from dataclasses import replace

    committed = Path(__file__).parents[1] / "benchmarks/results/dial"
    summary = json.loads((committed / "summary.json").read_text())
    s = DialSettings(**summary["settings"])
    assert goal(summary["mean"], s) == summary["goal"]  # the committed goal is what the committed means give
    assert markdown(summary) == (committed / "report.md").read_text()  # and the committed report what it gives
    assert all(  # the goals are the settings'
        g["rel_error_ok"] and g["spread_ok"]
        for g in goal(summary["mean"], replace(s, error_goal=1, spread_goal=1)).values()
    )
    section = markdown(summary).split("## Goal")[1].split("##")[0]
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[-2:] for line in section.splitlines() if "|" in line}
    for arm, g in summary["goal"].items():
        length, accuracy = rows[arm]
        assert length == ("yes" if g["rel_error_ok"] and g["spread_ok"] else "no")
        assert accuracy.rstrip(" |") == ("yes" if g["accuracy_ok"] else "no")


def test_bad_budgets_are_refused(tmp_path):
    from dataclasses import replace

    with pytest.raises(ConfigError, match="4x"):
        run_bench(tmp_path, replace(QUICK, budgets=[32, 64]))
    with pytest.raises(ConfigError, match="target range"):
        run_bench(tmp_path, replace(QUICK, budgets=[16, 128]))


def test_the_command_refuses_a_summary_of_the_same_seeds(tmp_path, capsys):
    from l1lite.cli import main

    (tmp_path / "summary.json").write_text(json.dumps({"settings": {"seeds": QUICK.seeds}}))
    assert main(["bench", "dial", "--quick", "--out", str(tmp_path)]) == 2
    assert "exists for seeds [0]" in capsys.readouterr().err


def test_the_l1_vs_s1_arms_from_real_evals(tiny_model_dir, adapter_dir, tmp_path):
    """Real evals of the tiny model (untrained; with a LoRA as the trained model): each arm's figures are its rows',
    their means over two seeds, the gain of (c) over (a) and the plot."""
    from dataclasses import replace

    import numpy as np

    from l1lite.bench import harness
    from l1lite.bench.dial import measure
    from l1lite.eval.results import load_run

    s = replace(QUICK, budgets=[8, 32], max_completion_length=40)
    data = toy.write_jsonl(toy.draw_problems(3, 0, cap=9, max_ops=1), tmp_path / "eval.jsonl")
    models = {
        BEFORE: (None, "forcing", ["forcing", "prompt"]),
        "trained": (adapter_dir, "hardcap", ["prompt", "hardcap"]),
    }
    runs = {
        label: [measure(s, label, tiny_model_dir, adapter, data, tmp_path / f"seed-{n}", n, False, arm) for n in (0, 1)]
        for label, (adapter, arm, _) in models.items()
    }
    for label, seeds in runs.items():
        for n, m in enumerate(seeds):
            assert list(m["arms"]) == models[label][2]
            for arm, figures in m["arms"].items():
                rows = load_run(tmp_path / f"seed-{n}" / "eval" / harness.eval_name(label, "exact", arm))[2]
                assert {r["strategy"] for r in rows} == {arm} and len(rows) == 3 * 2 * s.samples
                for b in s.budgets:
                    n_b = np.array([r["tokens"] for r in rows if r["budget"] == b])
                    got = figures["rows"][str(b)]
                    assert got["within_20"] == pytest.approx(np.mean(np.abs(n_b - b) <= 0.2 * b))
                    assert got["over_budget"] == pytest.approx(np.mean(n_b > b))
                    assert got["mean_tokens"] == pytest.approx(n_b.mean())
                lengths = {(r["id"], r["budget"]): [] for r in rows}  # a problem's samples at a budget
                for r in rows:
                    lengths[r["id"], r["budget"]].append(r["tokens"])
                per_problem = [[np.mean(lengths[pid, b]) for b in s.budgets] for pid in {r["id"] for r in rows}]
                assert figures["slope"] == pytest.approx(np.mean([np.polyfit(s.budgets, y, 1)[0] for y in per_problem]))
                spread = figures["rows"]["32"]["mean_tokens"] / figures["rows"]["8"]["mean_tokens"]
                assert figures["dial_spread"] == pytest.approx(spread)
                if arm == "hardcap":  # at most the budget in all, cut off where it did not fit
                    assert all(r["tokens"] <= r["budget"] for r in rows) and "length" in {
                        r["finish_reason"] for r in rows
                    }
                if arm == "forcing":
                    assert all(r["thinking_tokens"] <= r["budget"] for r in rows)

    comparison = harness.l1_vs_s1(runs, BEFORE, tmp_path)
    ranges = []
    for label, arms in comparison["arms"].items():
        for arm, mean in arms.items():
            per_seed = [m["arms"][arm] for m in runs[label]]
            for f in ("dial_spread", "slope"):
                assert mean[f] == pytest.approx(statistics.fmean(p[f] for p in per_seed))
            for b, row in mean["rows"].items():
                for f in harness.ARM_FIGURES:
                    values = [p["rows"][b][f] for p in per_seed]
                    assert row[f] == pytest.approx(statistics.fmean(values))
                    assert row[f + "_range"] == pytest.approx(max(values) - min(values))
                    ranges.append(row[f + "_range"])
    assert max(ranges) > 0  # the seeds' samples differ
    for b, g in comparison["gain"]["trained"].items():
        a = comparison["arms"][BEFORE]["forcing"]["rows"][b]["accuracy"]
        c = comparison["arms"]["trained"]["prompt"]["rows"][b]["accuracy"]
        assert g == {"relative": (c - a) / a if a else None, "points": pytest.approx(100 * (c - a))}
    assert (tmp_path / harness.PLOT).read_bytes()[:8] == PNG
    table = [line for line in harness.l1_vs_s1_markdown(comparison, BEFORE) if line.startswith("| ")]
    assert len(table) == 1 + 4 * len(s.budgets) + 1 + len(s.budgets)  # two tables: a head, a row per arm or model


@pytest.mark.slow
def test_reduced_benchmark_moves_the_dial(tmp_path, check_l1_vs_s1):
    summary = run_bench(tmp_path, QUICK)
    models = {m for arm in ARMS for m in (arm, arm + L1_EXACT)}  # each arm after its Exact and its dual stage
    assert json.loads((tmp_path / "summary.json").read_text())["goal"].keys() == models
    assert (tmp_path / "report.md").is_file() and (tmp_path / "seed-0" / "plots-exact" / "length.png").is_file()
    for arm in ARMS:  # every planned step ran: no deadline cuts work short
        stages = summary["seeds"]["0"]["results"][arm]["train"]
        assert [t["steps"] for t in stages.values()] == [QUICK.exact_steps, QUICK.dual_steps]
        assert summary["seeds"]["0"]["results"][arm + L1_EXACT]["train"] == {"exact": stages["exact"]}
    before = summary["mean"][BEFORE]["dial_spread"]
    for arm in ARMS:
        assert summary["mean"][arm]["dial_spread"] > before, (arm, summary["mean"][arm]["rows"])
    runs = {label: [v["results"][label] for v in summary["seeds"].values()] for label in summary["mean"]}
    check_l1_vs_s1(summary, runs, tmp_path, BEFORE)
    assert (tmp_path / "seed-0" / "plots-exact" / "accuracy_vs_tokens.png").read_bytes()[:8] == PNG
    with pytest.raises(ConfigError, match="exists for seeds"):
        run_bench(tmp_path, QUICK)
    (tmp_path / "summary.json").unlink()
    start = time.time()
    again = run_bench(tmp_path, QUICK)  # the finished seed is reused, not rerun
    assert time.time() - start < 5 and again["mean"] == summary["mean"]

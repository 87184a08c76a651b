"""Eval: results storage and resume, summary metrics, report and plots, compare, CLI config."""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from l1lite.cli import main
from l1lite.core import vllm
from l1lite.core.config import ConfigError, EvalConfig, from_dict
from l1lite.eval.cli import add_arguments, config_from_args
from l1lite.eval.engine import _prepare_out, check_config, run_info, sample_seed, summarize
from l1lite.eval.report import PLOTS, compare, write_report
from l1lite.eval.results import RESULTS, SUMMARY, load_run, plan, read_results, row_key, select

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fake_rows(ids, budgets, strategies, mode="exact", samples=2, seed=0, scale=1.0) -> list[dict]:
    """GenerationResult-shaped result rows with varied lengths and verdicts (deterministic)."""
    rng = random.Random(seed)
    rows = []
    for key in plan(ids, budgets, strategies, mode, samples):
        pid, strategy, budget, mode_, k = key
        thinking = int(rng.randint(5, 40) * scale * (1 if budget is None else budget / min(budgets)))
        answer = rng.randint(1, 10)
        rows.append(
            {
                "id": pid,
                "strategy": strategy,
                "budget": budget,
                "mode": mode_,
                "sample": k,
                "seed": sample_seed(seed, key),
                "gold": "4",
                "boxed": "4",
                "verdict": rng.random() < 0.5,
                "tokens": thinking + answer + 1,
                "thinking_tokens": thinking,
                "answer_tokens": answer,
                "finish_reason": rng.choice(["stop", "length"]),
                "waits": 0,
                "seconds": 0.01,
                "text": "x</think>\\boxed{4}",
            }
        )
    return rows


def recompute(rows: list[dict], strategy: str, budget: int) -> dict:
    """Summary metrics of one (strategy, budget) row, computed independently of l1lite.eval.engine."""
    group = [r for r in rows if r["strategy"] == strategy and r["budget"] == (None if strategy == "none" else budget)]
    per_problem = {}
    for r in group:
        per_problem.setdefault(r["id"], []).append(float(r["verdict"]))
    total = np.array([r["tokens"] for r in group], dtype=float)
    think = np.array([r["thinking_tokens"] for r in group], dtype=float)
    return {
        "samples": len(group),
        "problems": len(per_problem),
        "accuracy": float(np.mean([np.mean(v) for v in per_problem.values()])),
        "mean_tokens": float(total.mean()),
        "median_tokens": float(np.median(total)),
        "mean_thinking_tokens": float(think.mean()),
        "median_thinking_tokens": float(np.median(think)),
        "rel_error": float(np.mean(np.abs(total - budget) / budget)),
        "rel_error_thinking": float(np.mean(np.abs(think - budget) / budget)),
        "within_20": float(np.mean(np.abs(total - budget) <= 0.2 * budget)),
        "within_20_thinking": float(np.mean(np.abs(think - budget) <= 0.2 * budget)),
        "over_budget": float(np.mean(total > budget)),
        "over_budget_thinking": float(np.mean(think > budget)),
        "truncated": float(np.mean([r["finish_reason"] == "length" for r in group])),
    }


def slope(rows: list[dict], strategy: str, budgets: list[int]) -> float:
    """Mean over problems of the least-squares slope of a problem's mean length on the budget (numpy's fit)."""
    slopes = []
    for pid in dict.fromkeys(r["id"] for r in rows):
        means = [recompute([r for r in rows if r["id"] == pid], strategy, b)["mean_tokens"] for b in budgets]
        slopes.append(np.polyfit(budgets, means, 1)[0])
    return float(np.mean(slopes))


def check_summary_matches_results(summary: dict, rows: list[dict]) -> None:
    info = summary["run"]
    expected_rows = [(s, b) for s in info["strategies"] for b in info["budgets"]]
    assert [(r["strategy"], r["budget"]) for r in summary["rows"]] == expected_rows
    for row in summary["rows"]:
        expected = recompute(rows, row["strategy"], row["budget"])
        assert expected["samples"] == info["problems"] * info["samples"]
        assert {k: row[k] for k in expected} == pytest.approx(expected)
    lo, hi = min(info["budgets"]), max(info["budgets"])
    for strategy in info["strategies"]:
        got = summary["dial_spread"][strategy]
        big, small = recompute(rows, strategy, hi), recompute(rows, strategy, lo)
        assert got["total"] == pytest.approx(big["mean_tokens"] / small["mean_tokens"])
        assert got["thinking"] == pytest.approx(big["mean_thinking_tokens"] / small["mean_thinking_tokens"])
        assert summary["slope"][strategy] == pytest.approx(slope(rows, strategy, info["budgets"]), abs=1e-9)


def check_report(folder: Path, runs: list[tuple[str, dict, list[dict]]]) -> None:
    """report.md, valid PNGs, and plots.json equal to the summaries and results."""
    assert (folder / "report.md").read_text().startswith("# l1lite eval report")
    for file in PLOTS.values():
        png = folder / file
        assert png.read_bytes()[:8] == PNG_SIGNATURE
        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    data = json.loads((folder / "plots.json").read_text())
    several = len(runs) > 1
    n_series = 0
    for label, summary, rows in runs:
        for strategy in summary["run"]["strategies"]:
            name = f"{label}: {strategy}" if several else strategy
            table = [r for r in summary["rows"] if r["strategy"] == strategy]
            budgets = [r["budget"] for r in table]
            assert data["accuracy"]["series"][name] == {"x": budgets, "y": [r["accuracy"] for r in table]}
            tradeoff = {"x": [r["mean_tokens"] for r in table], "y": data["accuracy"]["series"][name]["y"]}
            assert data["tradeoff"]["series"][name] == {**tradeoff, "budgets": budgets}
            assert data["length"]["total"][name]["y"] == [r["mean_tokens"] for r in table]
            assert data["length"]["thinking"][name]["y"] == [r["mean_thinking_tokens"] for r in table]
            assert data["length_error"]["total"][name]["y"] == [r["rel_error"] for r in table]
            assert data["length_error"]["thinking"][name]["y"] == [r["rel_error_thinking"] for r in table]
            for budget in budgets:
                panel = data["length_hist"]["panels"][str(budget)]
                wanted = None if strategy == "none" else budget
                lengths = [r["tokens"] for r in rows if r["strategy"] == strategy and r["budget"] == wanted]
                assert panel["counts"][name] == np.histogram(lengths, bins=panel["edges"])[0].tolist()
                assert sum(panel["counts"][name]) == summary["run"]["problems"] * summary["run"]["samples"]
            n_series += 1
    assert len(data["accuracy"]["series"]) == n_series


def write_run(folder: Path, ids, budgets, strategies, samples=2, seed=0, scale=1.0, mode="exact") -> dict:
    """A finished eval folder made of fake rows: results.jsonl, summary.json, report and plots."""
    cfg = from_dict(
        EvalConfig,
        {"out": str(folder), "model": "m.gguf", "budgets": budgets, "strategies": strategies},
    )
    cfg.samples, cfg.seed, cfg.mode = samples, seed, mode
    rows = fake_rows(ids, budgets, strategies, mode=mode, samples=samples, seed=seed, scale=scale)
    folder.mkdir(parents=True)
    (folder / RESULTS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"run": run_info(cfg, ids, "math"), **summarize(rows, budgets, strategies)}
    (folder / SUMMARY).write_text(json.dumps(summary))
    write_report([(folder.name, summary, rows)], folder)
    return summary


def test_plan_and_seeds():
    keys = plan(["a", "b"], [32, 16], ["prompt", "none"], "max", 3)
    assert len(keys) == 2 * 2 * 3 + 2 * 3  # none once, not per budget
    assert keys[0] == ("a", "prompt", 16, "max", 0) and keys[-1] == ("b", "none", None, "max", 2)
    seeds = [sample_seed(7, k) for k in keys]
    assert seeds == [sample_seed(7, k) for k in keys]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2**31 for s in seeds)
    assert sample_seed(8, keys[0]) != seeds[0]


def test_read_results_ignores_and_repairs_partial_last_line(tmp_path):
    rows = fake_rows(["a", "b"], [16], ["prompt"])
    path = tmp_path / RESULTS
    whole = "".join(json.dumps(r) + "\n" for r in rows)
    path.write_text(whole + json.dumps(rows[0])[:25])
    assert read_results(path) == rows
    assert path.read_text() != whole  # reading alone leaves the file as it is
    assert read_results(path, repair=True) == rows
    assert path.read_text() == whole
    path.write_text(whole + "{oops\n" + whole)
    with pytest.raises(ConfigError, match=r"results.jsonl:5: not a JSON line"):
        read_results(path)
    assert read_results(tmp_path / "missing.jsonl") == []


def test_select_keeps_plan_order_and_drops_other_keys():
    rows = fake_rows(["a", "b", "c"], [16, 32], ["prompt", "none"])
    keys = plan(["b", "a"], [32], ["prompt"], "exact", 1)
    assert [(r["id"], r["budget"], r["sample"]) for r in select(rows[::-1], keys)] == [("b", 32, 0), ("a", 32, 0)]


def test_summarize_metrics_by_hand():
    base = {"mode": "exact", "finish_reason": "stop"}
    rows = [  # problem p: 2 of 2 right, problem q: 1 of 2 right -> mean pass@1 = 0.75
        {**base, "id": "p", "strategy": "prompt", "budget": 10, "sample": 0, "verdict": True, "tokens": 12},
        {**base, "id": "p", "strategy": "prompt", "budget": 10, "sample": 1, "verdict": True, "tokens": 8},
        {**base, "id": "q", "strategy": "prompt", "budget": 10, "sample": 0, "verdict": False, "tokens": 10},
        {**base, "id": "q", "strategy": "prompt", "budget": 10, "sample": 1, "verdict": True, "tokens": 30},
        {**base, "id": "p", "strategy": "prompt", "budget": 20, "sample": 0, "verdict": False, "tokens": 20},
        {**base, "id": "p", "strategy": "none", "budget": None, "sample": 0, "verdict": True, "tokens": 15},
    ]
    for r in rows:
        r["thinking_tokens"] = r["tokens"] - 2
    s = summarize(rows, [20, 10], ["prompt", "none"])
    by = {(r["strategy"], r["budget"]): r for r in s["rows"]}
    assert list(by) == [("prompt", 10), ("prompt", 20), ("none", 10), ("none", 20)]
    r10 = by["prompt", 10]
    assert r10["accuracy"] == 0.75 and r10["samples"] == 4 and r10["problems"] == 2
    assert r10["mean_tokens"] == 15 and r10["median_tokens"] == 11
    assert r10["rel_error"] == pytest.approx((0.2 + 0.2 + 0 + 2.0) / 4)
    assert r10["over_budget"] == 0.5 and r10["over_budget_thinking"] == 0.25
    assert r10["within_20"] == 0.75 and r10["within_20_thinking"] == 0.5  # 12, 8, 10 within 2 of 10; 30 not
    assert r10["mean_thinking_tokens"] == 13 and r10["rel_error_thinking"] == pytest.approx((0 + 0.4 + 0.2 + 1.8) / 4)
    # `none` is one set of samples reported against each budget
    assert by["none", 10]["mean_tokens"] == by["none", 20]["mean_tokens"] == 15
    assert by["none", 10]["rel_error"] == 0.5 and by["none", 20]["rel_error"] == 0.25
    assert by["none", 10]["over_budget"] == 1.0 and by["none", 20]["over_budget"] == 0.0
    assert s["dial_spread"]["prompt"]["total"] == pytest.approx(20 / 15)
    assert s["dial_spread"]["none"] == {"total": 1.0, "thinking": 1.0}
    assert summarize(rows, [10], ["prompt"])["dial_spread"] == {}  # one budget: no spread
    # slope: problem p goes from 10 tokens (mean of 12 and 8) at 10 to 20 at 20; q has one budget, so no slope
    assert s["slope"] == {"prompt": 1.0, "none": 0.0}
    assert summarize(rows, [10], ["prompt"])["slope"] == {}


def test_report_and_plots_equal_summary(tmp_path):
    ids = [f"p{i}" for i in range(5)]
    folder = tmp_path / "run"
    summary = write_run(folder, ids, [16, 32, 64], ["prompt", "forcing", "none"], samples=3)
    rows = read_results(folder / RESULTS)
    check_summary_matches_results(summary, rows)
    check_report(folder, [("run", summary, rows)])
    report = (folder / "report.md").read_text()
    assert "| prompt | 32 | 15 |" in report and "![accuracy](accuracy.png)" in report


def test_compare_runs_side_by_side(tmp_path):
    ids = ["p0", "p1", "p2"]
    a = write_run(tmp_path / "base", ids, [16, 32], ["prompt", "none"], seed=1)
    b = write_run(tmp_path / "l1", ids, [16, 32, 64], ["prompt"], seed=2, scale=2.0, mode="max")
    out = tmp_path / "cmp"
    assert compare([str(tmp_path / "base"), str(tmp_path / "l1")], out) == out / "report.md"
    runs = [load_run(tmp_path / "base"), load_run(tmp_path / "l1")]
    assert [r[1] for r in runs] == [a, b]
    check_report(out, runs)
    report = (out / "report.md").read_text()
    assert "| base | prompt | 16 |" in report and "| l1 | prompt | 64 |" in report
    with pytest.raises(FileExistsError):
        compare([str(tmp_path / "base")], out)
    with pytest.raises(ConfigError, match="no summary.json"):
        compare([str(tmp_path / "nothing")], tmp_path / "cmp2")
    assert main(["eval", "compare", str(tmp_path / "base"), str(tmp_path / "base"), "--out", str(out), "--force"]) == 0
    assert "base#2: prompt" in json.loads((out / "plots.json").read_text())["accuracy"]["series"]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_config_file_flags_and_overrides(tmp_path):
    path = tmp_path / "eval.yaml"
    path.write_text("model: a.gguf\nsamples: 4\nbudgets: [100, 200]\ndata:\n  dataset: x.jsonl\n  limit: 9\n")
    cfg = config_from_args(parse(["--config", str(path), "--samples", "2", "--limit", "3", "--set", "top_p=0.5"]))
    assert (cfg.model, cfg.samples, cfg.budgets, cfg.top_p) == ("a.gguf", 2, [100, 200], 0.5)
    assert (cfg.data.dataset, cfg.data.limit) == ("x.jsonl", 3)
    cfg = config_from_args(parse(["--model", "m", "--budgets", "16,32", "--strategies", "prompt,none"]))
    assert cfg.budgets == [16, 32] and cfg.strategies == ["prompt", "none"] and cfg.data.dataset == "l1lite:math-small"
    check_config(cfg)
    path.write_text("model: a.gguf\nbudget: [1]\n")
    with pytest.raises(ConfigError, match="unknown config key 'budget'"):
        config_from_args(parse(["--config", str(path)]))
    assert parse(["--budgets", "16, 64,"]).budgets == [16, 64]
    assert config_from_args(parse([])).progress and not config_from_args(parse(["--no-progress"])).progress


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": None}, "needs a model"),
        ({"endpoint": "http://localhost:8080"}, "give --tokenizer"),
        ({"budgets": [16, 16]}, "distinct positive"),
        ({"budgets": [0]}, "distinct positive"),
        ({"strategies": ["prompt", "s1"]}, "strategies must be"),
        ({"mode": "both"}, "eval.mode"),
        ({"samples": 0}, "eval.samples"),
        ({"top_p": 0.0}, "top_p"),
        ({"grader": "nope"}, "nope"),
        ({"backend": "sglang"}, "eval.backend must be one of auto, transformers, vllm"),
        ({"backend": "vllm"}, "--backend vllm runs an HF model folder, not an --endpoint or a .gguf file"),
        ({"concurrency": 4}, "needs an --endpoint or --backend vllm"),
    ],
)
def test_check_config_rejects(changes, message):  # model m.gguf
    cfg = from_dict(EvalConfig, {"model": "m.gguf", **changes})
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)


def test_cli_reports_config_errors_in_one_line(capsys):
    assert main(["eval", "--budgets", "16"]) == 2
    assert capsys.readouterr().err.strip() == (
        "l1lite eval: error: eval needs a model (--model FILE.gguf or HF folder) or an --endpoint URL"
    )


@pytest.mark.skipif(vllm.available(), reason="vLLM is installed here")
def test_backend_vllm_without_vllm_is_one_line(tiny_model_dir, tmp_path):
    cfg = from_dict(EvalConfig, {"model": str(tiny_model_dir), "backend": "vllm", "out": str(tmp_path / "e")})
    with pytest.raises(ConfigError, match=r"^--backend vllm: vLLM is not installed \(pip install 'l1lite\[vllm\]'"):
        check_config(cfg)
    assert not (tmp_path / "e").exists()


def test_out_folder_refuses_a_different_eval(tmp_path):
    cfg = from_dict(EvalConfig, {"out": str(tmp_path / "o"), "model": "a.gguf", "budgets": [16]})
    out = _prepare_out(cfg, force=False)
    (out / RESULTS).write_text("{}\n")
    cfg.budgets, cfg.samples, cfg.data.limit = [16, 32], 3, 5  # may grow on resume
    _prepare_out(cfg, force=False)
    cfg.temperature = 0.0
    with pytest.raises(ConfigError, match=r"different eval \(temperature: 0.6 there, 0.0 now\)"):
        _prepare_out(cfg, force=False)
    _prepare_out(cfg, force=True)
    assert not (out / RESULTS).exists()


def test_median_is_of_generated_tokens():
    rows = fake_rows(["a", "b", "c"], [16], ["prompt"], samples=3)
    row = summarize(rows, [16], ["prompt"])["rows"][0]
    assert row["median_tokens"] == statistics.median(r["tokens"] for r in rows)


def eval_argv(gguf: Path, out: Path) -> list[str]:
    return [
        "eval", "--model", str(gguf), "--limit", "3", "--budgets", "16,32", "--strategies", "prompt,forcing,none",
        "--samples", "2", "--max-tokens", "64", "--n-ctx", "512", "--seed", "5", "--out", str(out), "--no-progress",
    ]  # fmt: skip


@pytest.mark.slow
def test_eval_tiny_gguf_end_to_end(tiny_gguf, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(eval_argv(tiny_gguf, out)) == 0
    line = r"eval: 30 samples in [\d.]+ s \([\d.]+ samples/s, [\d.]+ tokens/s\)"  # --no-progress: one line
    assert re.fullmatch(line, capsys.readouterr().err.strip())
    for name in (RESULTS, SUMMARY, "config.json", "report.md", "plots.json", *PLOTS.values()):
        assert (out / name).is_file(), name
    rows = read_results(out / RESULTS)
    summary = json.loads((out / SUMMARY).read_text())
    ids = ["ms-000", "ms-001", "ms-002"]  # the first three problems of the shipped set
    assert summary["run"]["ids"] == ids and summary["run"]["problems"] == 3
    keys = plan(ids, [16, 32], ["prompt", "forcing", "none"], "exact", 2)
    assert [row_key(r) for r in rows] == keys
    for r in rows:
        assert r["seed"] == sample_seed(5, row_key(r))
        assert 0 < r["tokens"] <= 64 and r["thinking_tokens"] <= r["tokens"]
        assert r["gold"] in ("141", "16", "182") and r["verdict"] is False  # a random model is never right
        if r["strategy"] == "forcing":  # thinking capped at the budget, then closed
            assert r["thinking_tokens"] <= r["budget"] and "</think>" in r["text"]
    check_summary_matches_results(summary, rows)
    check_report(out, [("run", summary, rows)])
    throughput = summary["throughput"]  # in-process runs record it too
    assert throughput["samples"] == len(keys) and throughput["tokens"] == sum(r["tokens"] for r in rows)
    assert throughput["concurrency"] == 1 and throughput["seconds"] > 0
    assert throughput["tokens_per_s"] == pytest.approx(throughput["tokens"] / throughput["seconds"], rel=0.01)


def test_hard_cap_holds_in_counted_tokens(tmp_path):
    """SmolLM2's answers cut at 16 ids can re-tokenize longer (ids merged where its tokenizer splits): the hard cap
    still reports at most the budget, batched and one at a time."""
    data = tmp_path / "sums.jsonl"
    sums = [(a, b) for a in (11, 17, 20, 6) for b in (1, 13, 19, 8)]
    data.write_text(
        "".join(
            json.dumps({"id": f"s{a}-{b}", "problem": f"What is {a} + {b}?", "answer": str(a + b)}) + "\n"
            for a, b in sums
        )
    )
    for batch in (16, 1):
        out = tmp_path / f"batch-{batch}"
        argv = [
            "eval",
            "--model",
            "l1lite:smollm2-135m",
            "--dataset",
            str(data),
            "--grader",
            "number",
            "--budgets",
            "16",
            "--strategies",
            "hardcap",
            "--samples",
            "1",
            "--batch-size",
            str(batch),
            "--out",
            str(out),
        ]
        assert main([*argv, "--no-require-think-close", "--no-progress"]) == 0
        rows = read_results(out / RESULTS)
        assert len(rows) == 16 and max(r["tokens"] for r in rows) <= 16
        assert sum(r["finish_reason"] == "length" for r in rows) >= 8  # most answers were cut
        assert json.loads((out / SUMMARY).read_text())["rows"][0]["over_budget"] == 0


@pytest.mark.slow
def test_resume_after_interruption_gives_the_same_summary(tiny_gguf, tmp_path, eval_summary, interrupted_eval):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(eval_argv(tiny_gguf, whole)) == 0
    assert 8 <= interrupted_eval(eval_argv(tiny_gguf, cut), cut) < 30
    assert main(eval_argv(tiny_gguf, cut)) == 0
    assert eval_summary(cut) == eval_summary(whole)
    assert (cut / "plots.json").read_text() == (whole / "plots.json").read_text()
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in read_results(whole / RESULTS)]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in read_results(cut / RESULTS)] == strip
    assert len({r["text"] for r in strip}) > len(strip) // 2  # sampled texts differ between keys


def test_a_runs_saved_config_reproduces_it(tmp_path):
    cfg = config_from_args(parse(["--model", "m.gguf", "--budgets", "16,64", "--samples", "3", "--out", str(tmp_path)]))
    _prepare_out(cfg, force=False)
    again = config_from_args(parse(["--config", str(tmp_path / "config.json")]))
    assert again == cfg
    assert config_from_args(parse(["--config", str(tmp_path / "config.json"), "--samples", "1"])).samples == 1

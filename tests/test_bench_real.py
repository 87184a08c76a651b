"""`l1lite bench real`, reduced: SmolLM2-135M-Instruct through `l1lite train` (shipped preset) and `l1lite eval`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from l1lite.bench.real import QUICK, RealSettings, aggregate, arithmetic_problems, markdown, run_bench
from l1lite.core.config import ConfigError


def test_arithmetic_problems_are_distinct_checkable_and_held_out():
    train = arithmetic_problems(200, 0)
    held = arithmetic_problems(40, 1, exclude={r["problem"] for r in train})
    assert len({r["problem"] for r in train}) == 200 and not {r["problem"] for r in held} & {
        r["problem"] for r in train
    }
    for r in train + held:
        a, op, b = r["problem"].removeprefix("What is ").rstrip("?").split()
        assert int(r["answer"]) == (int(a) + int(b) if op == "+" else int(a) - int(b)) >= 0


def test_the_committed_summary_gives_its_means_goal_and_report():
    committed = Path(__file__).parents[1] / "benchmarks/results/real"
    summary = json.loads((committed / "summary.json").read_text())
    assert aggregate(summary["seeds"], RealSettings(**summary["settings"])) == summary["mean"]
    assert markdown(summary) == (committed / "report.md").read_text()


def test_budgets_must_span_4x(tmp_path):
    from dataclasses import replace

    with pytest.raises(ConfigError, match="4x"):
        run_bench(tmp_path, replace(QUICK, budgets=[32, 64]))


def test_each_command_says_when_it_starts_and_ends_and_a_failure_names_its_log(tmp_path, capfd):
    from l1lite.bench.real import _l1lite

    ok, bad = tmp_path / "help.log", tmp_path / "bad.log"
    seconds = _l1lite(["eval", "--help"], ok)
    assert "--budgets" in ok.read_text()
    with pytest.raises(RuntimeError, match=f"`l1lite eval` failed with exit code 2; see {bad}"):
        _l1lite(["eval", "--budgets=x"], bad)
    assert "--budgets" in bad.read_text()
    assert capfd.readouterr().err.splitlines() == [
        f"l1lite eval: running (log {ok})",
        f"l1lite eval: done in {seconds} s",
        f"l1lite eval: running (log {bad})",
    ]


def test_each_finished_part_is_kept_and_the_summary_written(tmp_path, monkeypatch):
    """The harness around stand-in ``l1lite`` commands: base eval once, seeds kept, summary and report."""
    from l1lite.bench import real

    calls, arms = [], []

    def fake_l1lite(args: list[str], log: Path) -> float:
        calls.append(args[0])
        flags = dict(a.removeprefix("--").split("=", 1) for a in args[1:] if "=" in a)
        if args[0] == "train":
            train_dir = Path(next(a for a in args if "output_dir=" in a).split("output_dir=")[1])
            train_dir.mkdir(parents=True)
            (train_dir / "summary.json").write_text(json.dumps({"global_step": 1}))
            return 1.0
        budgets = [int(b) for b in flags["budgets"].split(",")]
        tokens = {b: (b if "adapter" in flags else 40) for b in budgets}  # the stand-in training moves the dial
        strategy = flags["strategies"]
        accuracy = 0.2 if strategy == "forcing" else 0.5
        row = {"strategy": strategy, "accuracy": accuracy, "rel_error": 0.1, "within_20": 0.6, "over_budget": 0.2}
        rows = [{**row, "budget": b, "mean_tokens": tokens[b]} for b in budgets]
        spread = tokens[budgets[-1]] / tokens[budgets[0]]
        slope = (tokens[budgets[-1]] - tokens[budgets[0]]) / (budgets[-1] - budgets[0])
        arms.append((strategy, flags["mode"], flags["samples"], flags.get("limit")))
        Path(flags["out"]).mkdir(parents=True)
        (Path(flags["out"]) / "summary.json").write_text(
            json.dumps({"rows": rows, "dial_spread": {strategy: {"total": spread}}, "slope": {strategy: slope}})
        )
        return 1.0

    monkeypatch.setattr(real, "_l1lite", fake_l1lite)
    s = RealSettings(seeds=[0, 1], train_problems=20, eval_problems=4, arm_problems=2, arm_samples=1)
    with pytest.raises(ConfigError, match="skip-base"):
        run_bench(tmp_path, s, skip_base=True)
    assert calls == ["train", "eval", "eval", "eval"] * 2
    summary = run_bench(tmp_path, s)  # the seeds are kept; only the base eval runs
    assert calls[8:] == ["eval"] * 3
    # the prompt in exact and max mode with every sample, the other arm on the first 2 problems x 1 sample
    trained = [("prompt", "exact", "2", None), ("hardcap", "exact", "1", "2"), ("prompt", "max", "2", None)]
    assert arms == trained * 2 + [("forcing" if a == "hardcap" else a, *rest) for a, *rest in trained]
    comparison = summary["l1_vs_s1"]
    assert {label: list(a) for label, a in comparison["arms"].items()} == {
        "base": ["forcing", "prompt"],
        "trained": ["prompt", "hardcap"],
    }
    assert comparison["gain"]["trained"]["16"] == pytest.approx({"relative": 1.5, "points": 30.0})  # 0.2 -> 0.5
    assert comparison["arms"]["trained"]["hardcap"]["slope"] == 1.0 and (tmp_path / "accuracy_vs_tokens.png").is_file()
    seed = summary["seeds"]["1"]
    assert seed["base"]["dial_spread"] == 1.0 and seed["trained"]["dial_spread"] == 4.0 and seed["train_seconds"] == 1.0
    assert summary["mean"]["goal"]["spread"] == 4.0 and summary["mean"]["goal"]["spread_ok"]
    assert json.loads((tmp_path / "summary.json").read_text())["settings"]["spread_goal"] == s.spread_goal
    assert markdown(summary) == (tmp_path / "report.md").read_text()
    with pytest.raises(ConfigError, match="exists for seeds"):
        run_bench(tmp_path, s)


@pytest.mark.slow
def test_reduced_real_model_run_moves_the_dial(tmp_path, monkeypatch, check_l1_vs_s1):
    monkeypatch.setenv("L1LITE_CACHE", str(tmp_path / "cache"))  # the GGUF is converted like a user's first run
    summary = run_bench(tmp_path / "real", QUICK)
    assert json.loads((tmp_path / "real" / "summary.json").read_text())["settings"]["preset"] == "dial-smollm2"
    seed = summary["seeds"]["0"]
    train = seed["train"]
    assert train["global_step"] == 1 and train["base_model"] == "l1lite:smollm2-135m"  # one GRPO step after ...
    assert train["hindsight"]["sampled"] == 96 * 3 and train["hindsight"]["pairs"] > 0  # ... the hindsight start
    assert (tmp_path / "real" / "seed-0" / "train" / "adapter" / "adapter_model.safetensors").is_file()
    before, after = seed["base"]["dial_spread"], seed["trained"]["dial_spread"]
    assert before > 0 and all(r["mean_tokens"] > 0 for r in seed["trained"]["rows"].values())
    assert after > before, f"the trained model did not widen the dial: spread {before:.2f} -> {after:.2f}"
    check_l1_vs_s1(summary, {"base": [seed["base"]], "trained": [seed["trained"]]}, tmp_path / "real", "base")
    forcing = json.loads((tmp_path / "real" / "base" / "base-forcing" / "summary.json").read_text())["run"]
    assert (forcing["problems"], forcing["samples"]) == (QUICK.arm_problems, QUICK.arm_samples)  # the arms' cost

"""`l1lite bench real`, reduced: SmolLM2-135M-Instruct through `l1lite train` (shipped preset) and `l1lite eval`."""

from __future__ import annotations

import json

import pytest

from l1lite.bench.real import QUICK, arithmetic_problems, run_bench
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


def test_budgets_must_span_4x(tmp_path):
    from dataclasses import replace

    with pytest.raises(ConfigError, match="4x"):
        run_bench(tmp_path, replace(QUICK, budgets=[32, 64]))


@pytest.mark.slow
def test_reduced_real_model_run_moves_the_dial(tmp_path, monkeypatch):
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

"""`l1lite demo`: a model learns the budget in its prompt, before/after table, plot, GGUF, llama.cpp at both budgets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "l1lite.cli", "demo", "--out", str(out)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # off a terminal: one line per stage on stderr (no bars, log dictionaries or third-party notices), ~20 in all
    stages = [
        r"warm-up: \d+ steps in [\d.]+ s",
        r"eval before: \d+ samples in [\d.]+ s",
        r"train: \d+ steps in [\d.]+ s",
        r"eval after: \d+ samples in [\d.]+ s",
        r"export: 3 steps in [\d.]+ s \(merge, f16, verify\)",
        r"llama\.cpp: 2 answers in [\d.]+ s",
    ]
    lines = proc.stderr.splitlines()
    assert len(lines) == len(stages) and all(map(re.fullmatch, stages, lines)), proc.stderr
    assert "{'" not in proc.stdout and len(lines) + len(proc.stdout.splitlines()) <= 22, proc.stdout
    record = json.loads((out / "demo.json").read_text())
    before, after = record["before"], record["after"]
    assert record["budgets"] == [24, 96] and [r["budget"] for r in after["rows"]] == [24, 96]
    # the printed table is the one measured, with a verdict on the dial
    for label, res in (("before", before), ("after", after)):
        line = next(x for x in proc.stdout.splitlines() if x.strip().startswith(label))
        assert f"{res['dial_spread']:.2f}" in line and all(f"{r['mean_tokens']:5.1f} tok" in line for r in res["rows"])
    verdict = "LCPO moved the dial" if record["moved"] else "RL did NOT move the dial"
    assert verdict in proc.stdout and record["moved"] == (after["dial_spread"] >= 1.3 * before["dial_spread"])
    # the goal (accuracy >= 0.8 at both budgets, spread >= 3) is judged on the measured figures, met or missed
    goal_met = min(r["accuracy"] for r in after["rows"]) >= 0.8 and after["dial_spread"] >= 3.0
    assert record["goal_met"] == goal_met and ("met on seed 0" if goal_met else "MISSED on seed 0") in proc.stdout
    assert (out / "plots-exact" / "length.png").read_bytes()[:8] == PNG_SIGNATURE
    assert json.loads((out / "train" / "summary.json").read_text())["global_step"] == 35
    gguf = Path(record["gguf"])
    assert gguf.is_file() and gguf.read_bytes()[:4] == b"GGUF"

    # both answers are llama.cpp's, from the exported GGUF: the same prompt and seed give them again
    from l1lite.inference import Budget, Sampling, generate, load_backend

    backend = load_backend(str(gguf))
    for budget, answer in record["answers"].items():
        assert f"budget {int(budget):>3}: {answer['total_tokens']:>3} tokens" in proc.stdout
        again = generate(
            backend, record["question"], Budget(int(budget), "exact", "none", max_tokens=112), Sampling(0.6, 0.95, 0)
        )
        assert again.text == answer["text"] and again.total_tokens == answer["total_tokens"]

"""`l1lite demo`: the whole pipeline on the tiny model, ending with llama.cpp text for a budget prompt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "l1lite.cli", "demo", "--out", str(out)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "demo.json").read_text())
    assert "Think for 32 tokens." in record["prompt"]
    assert record["result"]["text"] and proc.stdout.rstrip().endswith(record["result"]["text"].rstrip())
    assert record["result"]["thinking_tokens"] <= 32  # enforce=cap
    gguf = Path(record["gguf"])
    assert gguf.is_file() and gguf.read_bytes()[:4] == b"GGUF"
    assert (out / "train" / "adapter" / "adapter_model.safetensors").is_file()
    summary = json.loads((out / "train" / "summary.json").read_text())
    assert summary["global_step"] == 4 and summary["backend"] == "plain"

    # the printed text is llama.cpp's: the same GGUF, prompt and seed give it again
    from l1lite.demo import BUDGET, QUESTION
    from l1lite.inference import Budget, Sampling, generate, load_backend

    again = generate(load_backend(str(gguf)), QUESTION, Budget(BUDGET, "exact", "cap", max_tokens=64), Sampling(seed=0))
    assert again.text == record["result"]["text"]

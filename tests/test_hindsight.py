"""The hindsight start (config section ``hindsight``): checks before loading, then a real run on SmolLM2."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml
from safetensors import safe_open

from l1lite.bench.real import arithmetic_problems
from l1lite.bench.toy import write_jsonl
from l1lite.core.grading import is_correct


def _train(tmp_path, *sets: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "l1lite.cli", "train", "--config", "dial-smollm2", "--no-progress"]
    for s in (f"output_dir={tmp_path / 'run'}", *sets):
        cmd += ["--set", s]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.parametrize(
    ("setting", "culprit"),
    [
        ("hindsight.min_tokens=500", "hindsight.min_tokens must be between 1 and hindsight.max_tokens (128)"),
        ("hindsight.styles=[]", "hindsight.styles must be a non-empty list"),
        ("hindsight.learning_rate=0", "hindsight.learning_rate must be > 0"),
        ("hindsight.lr_scheduler_type=cosine_warm", "hindsight.lr_scheduler_type must be constant | linear | cosine"),
        ("hindsight.problems=0", "trainer.max_steps is 0 and hindsight.problems is 0: nothing to train"),
        ("hindsight.epochs=two", "config key 'hindsight.epochs' must be int"),
        (
            "hindsight.micro_batch_size=3",
            "hindsight.micro_batch_size must be 0 or a divisor of hindsight.batch_size (8)",
        ),
    ],
)
def test_bad_hindsight_settings_exit_2_with_one_line_before_loading(tmp_path, setting, culprit):
    proc = _train(tmp_path, setting)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("l1lite train: error:")]
    assert len(lines) == 1 and culprit in lines[0], proc.stderr[-2000:]
    assert not (tmp_path / "run").exists()  # nothing loaded, nothing written


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["transformers", pytest.param("vllm", marks=[pytest.mark.vllm, pytest.mark.slow])])
def test_hindsight_start_relabels_own_answers_and_trains_the_lora(engine, tmp_path, request):
    """The start samples with ``model.generate``, or with vLLM under ``rollouts.engine: vllm``."""
    from transformers import AutoTokenizer

    from l1lite.core.models import resolve_model

    if engine == "vllm":
        request.getfixturevalue("vllm_ready")
    rows = arithmetic_problems(6, 0)
    data = write_jsonl(rows, tmp_path / "train.jsonl")
    proc = _train(
        tmp_path,
        f"data.dataset={data}",
        "hindsight.problems=6",
        "hindsight.epochs=1",
        "hindsight.max_tokens=64",
        "hindsight.batch_size=4",
        "hindsight.micro_batch_size=2",  # 2 pairs per forward pass, 2 accumulated: still 4 per optimizer step
        f"rollouts.engine={engine}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    pairs = [json.loads(line) for line in (run / "hindsight" / "pairs.jsonl").read_text().splitlines()]
    summary = json.loads((run / "summary.json").read_text())
    h = summary["hindsight"]
    assert summary["global_step"] == 0 and h["sampled"] == 6 * 3 and h["pairs"] == len(pairs) > 0
    assert h["sft_steps"] == -(-len(pairs) // 4)  # one epoch of optimizer steps of 4 pairs
    assert len(h["sft_loss_per_epoch"]) == 1 and h["sft_loss_per_epoch"][0] > 0
    assert ("engine_seconds" in h) == (engine == "vllm")  # vLLM started (and sampled) only when asked for
    # --no-progress is trainer.disable_tqdm: one line per stage, counting what it did
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["disable_tqdm"] is True
    assert re.search(r"^hindsight sampling: 18 answers in [\d.]+ s", proc.stderr, re.M), proc.stderr
    assert re.search(f"^hindsight SFT: {h['sft_steps']} steps in [\\d.]+ s$", proc.stderr, re.M), proc.stderr

    tok = AutoTokenizer.from_pretrained(resolve_model("l1lite:smollm2-135m"))
    answers = {r["id"]: r for r in rows}
    for p in pairs:
        assert 8 <= p["tokens"] <= 64
        question = answers[p["id"]]["problem"]
        # the pair's prompt carries no style suffix, only the answer's own length as the exact budget
        assert f"{question} Let's think step by step" in p["prompt"]
        assert p["prompt"].count(f"Think for {p['tokens']} tokens.") == 1
        assert p["correct"] == is_correct(
            p["completion"], answers[p["id"]]["answer"], "number", require_think_close=False
        )
        # each pair keeps its sampled tokens (what the SFT trains on): as long as its budget, ending the turn
        assert len(p["completion_ids"]) == p["tokens"] and p["completion_ids"][-1] == tok.eos_token_id
        assert tok.decode(p["completion_ids"], skip_special_tokens=True) == p["completion"]
    assert {p["style"] for p in pairs} <= {"", " Answer in a few words.", " Explain each step in detail."}

    with safe_open(str(run / "adapter" / "adapter_model.safetensors"), framework="pt") as f:
        b = [f.get_tensor(k) for k in f.keys() if "lora_B" in k]
    assert b and any(t.abs().max() > 0 for t in b)  # LoRA B starts at zero: the SFT changed the adapter

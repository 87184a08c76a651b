"""Merge + GGUF export on the tiny model, checked against PEFT, transformers and llama.cpp."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from l1lite.core.config import ConfigError
from l1lite.core.r1 import ASSISTANT, BOS, EOS, THINK_CLOSE, THINK_OPEN, USER
from l1lite.export import check_adapter, export, export_gguf, merge_adapter

llama_cpp = pytest.importorskip("llama_cpp")
IDS = [[483, 5, 17, 42, 99, 100, 7, 3]]


@pytest.fixture(scope="module")
def exported(tiny_model_dir, adapter_dir, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("export") / "out"
    return export(tiny_model_dir, adapter_dir, out, quant=("f16", "q8_0", "q4_k_m"), name="tiny-l1")


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor(IDS)).logits


def test_merge_base16_equals_peft_model(tiny_model_dir, adapter_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    peft_logits = _logits(PeftModel.from_pretrained(base, adapter_dir).eval())
    plain_logits = _logits(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32))
    merged = merge_adapter(tiny_model_dir, adapter_dir, tmp_path / "merged")
    merged_logits = _logits(AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32))
    assert (merged_logits - peft_logits).abs().max() <= 1e-4
    assert (plain_logits - peft_logits).abs().max() > 1e-2  # the adapter really changes the model
    assert (merged / "tokenizer.json").is_file() and list(merged.glob("*.safetensors"))


def test_merge_dequantized_equals_peft_on_4bit_base(tiny_model_dir, adapter_dir, tmp_path):
    """Merging into the dequantized nf4 weights reproduces the adapter as trained on the 4-bit base."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from l1lite.train.loaders import disable_cpu_bf16_repack, nf4_config

    q_base = AutoModelForCausalLM.from_pretrained(
        tiny_model_dir, quantization_config=nf4_config(torch.float32), device_map="cpu"
    )
    disable_cpu_bf16_repack(q_base)
    qlora_logits = _logits(PeftModel.from_pretrained(q_base, adapter_dir).eval())
    merged = merge_adapter(tiny_model_dir, adapter_dir, tmp_path / "merged", merge_into="dequantized")
    merged_logits = _logits(AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32))
    assert (merged_logits - qlora_logits).abs().max() <= 1e-4
    base16 = merge_adapter(tiny_model_dir, adapter_dir, tmp_path / "base16")
    base16_logits = _logits(AutoModelForCausalLM.from_pretrained(base16, dtype=torch.float32))
    assert (base16_logits - qlora_logits).abs().max() > 1e-3  # the two merge targets really differ


def test_f16_gguf_matches_hf(exported):
    v = exported["verify"]["f16"]
    assert v["ok"]
    assert v["max_abs_logit_diff"] <= 1e-2
    assert v["top1_agreement"] == 1.0
    assert v["greedy_identical"] and all(v["greedy_identical_per_prompt"])
    on_disk = json.loads((exported["gguf"]["f16"].parent / "verify.json").read_text())
    assert set(on_disk) == {"f16", "q8_0", "q4_k_m"} and on_disk["f16"]["ok"]


def test_gguf_metadata(exported):
    import gguf

    reader = gguf.GGUFReader(exported["gguf"]["f16"])
    fields = reader.fields

    def value(key):
        return fields[key].contents()

    assert value("general.architecture") == "qwen2"
    assert value("tokenizer.ggml.model") == "gpt2"
    assert value("tokenizer.ggml.pre") == "deepseek-r1-qwen"
    assert value("qwen2.block_count") == 2 and value("qwen2.embedding_length") == 64
    tokens, types = value("tokenizer.ggml.tokens"), value("tokenizer.ggml.token_type")
    assert len(tokens) == 512
    kind = dict(zip(tokens, types, strict=True))
    for tok in (BOS, EOS, USER, ASSISTANT):
        assert kind[tok] == gguf.TokenType.CONTROL
    assert kind[THINK_OPEN] == kind[THINK_CLOSE] == gguf.TokenType.USER_DEFINED
    assert kind["Ġ"] == gguf.TokenType.NORMAL
    assert tokens[-1] == "[PAD511]" and kind["[PAD511]"] == gguf.TokenType.UNUSED
    assert "<think>" in value("tokenizer.chat_template")
    f16_tensors = {t.name for t in reader.tensors if t.tensor_type == gguf.GGMLQuantizationType.F16}
    assert "blk.0.attn_q.weight" in f16_tensors and "blk.0.attn_q.bias" not in f16_tensors


@pytest.mark.parametrize("qtype", ["q8_0", "q4_k_m"])
def test_quantized_ggufs_load_and_generate(exported, qtype):
    path = exported["gguf"][qtype]
    assert path.stat().st_size < exported["gguf"]["f16"].stat().st_size
    llm = llama_cpp.Llama(str(path), n_ctx=128, verbose=False)
    try:
        out = llm.create_completion("What is 2 + 2?", max_tokens=8, temperature=0.0)
    finally:
        llm.close()
    assert out["usage"]["completion_tokens"] == 8


def test_tokenization_identical_in_hf_and_llama_cpp(exported):
    from transformers import AutoTokenizer

    merged = exported["merged"]
    tokenizer = AutoTokenizer.from_pretrained(merged)
    texts = [
        f"{BOS}{USER}What is 12 + 30? Think for 512 tokens.{ASSISTANT}{THINK_OPEN}\n",
        f"{THINK_OPEN}\nFirst, 12 + 30 = 42.\n\nWait, check again.\n{THINK_CLOSE}\n\nThe answer is \\boxed{{42}}.{EOS}",
        "Digits 0123456789 and 3.14159, 1,000,000; x^2 + y^2 = z^2",
        "$\\frac{1}{2} + \\sqrt{3} \\cdot \\pi \\leq \\int_0^1 x\\,dx$",
        "Unicode: café, naïve, 数学, Ωμέγα, emoji 🙂, ü ß",
        "lines\n\n\n  indented\ttab\r\nend   ",
        f"{USER}{USER}{THINK_CLOSE}{THINK_OPEN}",
    ]
    llm = llama_cpp.Llama(str(exported["gguf"]["f16"]), n_ctx=64, vocab_only=True, verbose=False)
    try:
        for text in texts:
            assert (
                llm.tokenize(text.encode(), add_bos=False, special=True)
                == tokenizer(text, add_special_tokens=False)["input_ids"]
            ), text
    finally:
        llm.close()


def test_modelfile(exported):
    path = exported["modelfile"]
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert "FROM ./tiny-l1-q4_k_m.gguf" in lines  # the smallest requested file, next to the Modelfile
    assert (path.parent / "tiny-l1-q4_k_m.gguf").is_file()
    for line in (
        'PARAMETER stop "<｜end▁of▁sentence｜>"',
        'PARAMETER stop "<｜User｜>"',
        "PARAMETER temperature 0.6",
        "PARAMETER top_p 0.95",
        "PARAMETER num_ctx 8192",
    ):
        assert line in lines
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    assert "<｜User｜>{{ $m.Content }}" in template and "<｜Assistant｜>" in template
    assert "<think>\n{{ end }}" in template  # thinking turn opens exactly like the training prompt
    assert "$.IsThinkSet" in template and "</think>" in template
    assert any(line.startswith("#") and "Think for 512 tokens." in line for line in lines)


def test_existing_output_needs_force(exported, tiny_model_dir, adapter_dir):
    out = exported["gguf"]["f16"].parent
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(ConfigError, match="exists"):
        export(tiny_model_dir, adapter_dir, out, quant=("f16",), name="tiny-l1")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_cli_quantized_only_without_verify(tiny_model_dir, adapter_dir, tmp_path, capsys):
    from l1lite.cli import main

    out = tmp_path / "out"
    argv = ["export", "--base", str(tiny_model_dir), "--adapter", str(adapter_dir), "--out", str(out)]
    assert main([*argv, "--quant", "q8_0", "--no-verify", "--no-progress"]) == 0
    assert re.search(r"^export: 3 steps in [\d.]+ s \(merge, f16, q8_0\)$", capsys.readouterr().err, re.M)
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "lora-q8_0.gguf", "merged"]
    assert "FROM ./lora-q8_0.gguf" in (out / "Modelfile").read_text()
    assert main([*argv, "--quant", "q8_0", "--no-verify"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main([*argv, "--quant", "q5_1"]) == 2


def test_adapter_for_another_base_is_rejected(tiny_model_dir, adapter_dir, tmp_path):
    from transformers import AutoModelForCausalLM, Qwen2Config

    other = tmp_path / "elsewhere" / tiny_model_dir.name  # same name, different shapes
    config = Qwen2Config(vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2)
    config.num_attention_heads, config.num_key_value_heads = 4, 2
    AutoModelForCausalLM.from_config(config).save_pretrained(other)
    with pytest.raises(ConfigError, match="does not fit base"):
        export(other, adapter_dir, tmp_path / "out1")
    renamed = tmp_path / "adapter"
    shutil.copytree(adapter_dir, renamed)
    cfg = json.loads((renamed / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "Qwen/Qwen2.5-Math-7B"
    (renamed / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="trained on 'Qwen/Qwen2.5-Math-7B'"):
        export(tiny_model_dir, renamed, tmp_path / "out2")
    assert not (tmp_path / "out1").exists() and not (tmp_path / "out2").exists()  # rejected before any work
    check_adapter(tiny_model_dir, adapter_dir)  # the right pair passes
    cached = f"/some/cache/models--org--{tiny_model_dir.name.upper()}-bnb-4bit/snapshots/abc"
    cfg["base_model_name_or_path"] = cached
    (renamed / "adapter_config.json").write_text(json.dumps(cfg))
    check_adapter(tiny_model_dir, renamed)  # names compare loosely


def test_unsupported_architecture_is_one_line_error(tiny_model_dir, tmp_path):
    model = tmp_path / "llama"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["architectures"] = ["LlamaForCausalLM"]
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="--llama-cpp") as err:
        export(model, None, tmp_path / "out")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="convert_hf_to_gguf.py"):
        export(model, None, tmp_path / "out", llama_cpp=tmp_path)


def test_failed_conversion_leaves_no_final_file(tiny_model_dir, tmp_path):
    """A truncated safetensors file fails mid-write: no GGUF under the final name, no temp file left."""
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-5000])
    with pytest.raises(ConfigError, match="truncated"):
        export_gguf(broken, tmp_path / "out" / "m-f16.gguf")
    assert list((tmp_path / "out").iterdir()) == []


def _kill_mid_write(cmd: list[str], env: dict, out: Path) -> list[Path]:
    """Run cmd, SIGKILL it as soon as an output is in progress, and return the temps it left."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if out.is_dir() and any(out.glob(".*.tmp-*")):
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return list(out.glob(".*.tmp-*")) if out.is_dir() else []


def test_killed_export_leaves_no_final_file(tiny_model_dir, adapter_dir, tmp_path):
    """SIGKILL while an output is being written: its final name never appears, and a rerun succeeds.

    A kill can land just after a rename, so the run is repeated until one lands mid-write.
    """
    cmd = [sys.executable, "-m", "l1lite.cli", "export", "--base", str(tiny_model_dir)]
    cmd += ["--adapter", str(adapter_dir), "--quant", "f16", "--no-verify"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for attempt in range(5):
        out = tmp_path / f"out{attempt}"
        temps = _kill_mid_write([*cmd, "--out", str(out)], env, out)
        if temps:
            break
    assert temps, "no kill in 5 runs landed while an output was in progress"
    for temp in temps:
        final = out / temp.name[1:].rsplit(".tmp-", 1)[0]
        assert not final.exists(), final
    assert not (out / "Modelfile").exists()
    # the rerun (with --force where the killed run had finished an output) succeeds and removes the stale temps
    force = ["--force"] if any(p.exists() for p in (out / "merged", out / "lora-f16.gguf")) else []
    rerun = subprocess.run([*cmd, "--out", str(out), *force], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "lora-f16.gguf", "merged"]
    assert (out / "lora-f16.gguf").read_bytes()[:4] == b"GGUF"


def test_prequantized_base_is_rejected(tiny_model_dir, tmp_path):
    """A 4-bit checkpoint has no 16-bit weights to merge into; merging would mean re-quantizing."""
    model = tmp_path / "tiny-bnb-4bit"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="already quantized"):
        merge_adapter(model, None, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()

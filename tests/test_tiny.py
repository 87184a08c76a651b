"""The offline tiny model folder behaves like DeepSeek-R1-Distill-Qwen's."""

from __future__ import annotations

import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from l1lite.core.r1 import ASSISTANT, BOS, EOS, THINK_CLOSE, THINK_OPEN, USER


def test_loads_with_auto_classes(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "qwen2"
    assert model.config.vocab_size >= len(tok)
    ids = tok("What is 2 + 2?", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], model.config.vocab_size)
    assert json.loads((tiny_model_dir / "tokenizer_config.json").read_text())["unk_token"] is None


def test_tokenizer_round_trips_text(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    for text in ["Compute $\\frac{3}{4} + 1$.", "héllo wörld ∑ 12345\n\n  tabs\t", "Wait, 7 × 8 = 56. So \\boxed{56}"]:
        assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text


def test_special_tokens_are_single_ids(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    for t in (BOS, EOS, USER, ASSISTANT, THINK_OPEN, THINK_CLOSE):
        assert len(tok(t, add_special_tokens=False).input_ids) == 1, t
    assert tok.bos_token == BOS and tok.eos_token == EOS
    # <think> tags survive decoding like in R1-Distill; control tokens do not
    ids = tok(f"{USER}x{THINK_CLOSE}y{EOS}", add_special_tokens=False).input_ids
    assert tok.decode(ids, skip_special_tokens=True) == f"x{THINK_CLOSE}y"


def test_chat_template_renders_r1_format(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    msgs = [{"role": "user", "content": "What is 1+1? Think for 512 tokens."}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == f"{BOS}{USER}What is 1+1? Think for 512 tokens.{ASSISTANT}{THINK_OPEN}\n"
    history = msgs + [{"role": "assistant", "content": "thinking...</think>The answer is 2."}, msgs[0]]
    text = tok.apply_chat_template(history, tokenize=False, add_generation_prompt=False)
    assert f"{ASSISTANT}The answer is 2.{EOS}{USER}" in text and "thinking" not in text
    with_system = [{"role": "system", "content": "SYS"}] + msgs
    assert tok.apply_chat_template(with_system, tokenize=False).startswith(f"{BOS}SYS{USER}")

"""Budgeted generation on the tiny model: llama.cpp, its OpenAI-compatible server, and transformers.

The random tiny model writes garbage and rarely closes its thinking, so ``cap`` always has work to
do; to make it end its thinking early (for ``forcing``), a real logit bias raises ``</think>``.
Counts are checked against an independent re-tokenization with the HF tokenizer of the same model.
"""

from __future__ import annotations

import io
import json
import socket
import sys

import pytest

from l1lite import cli
from l1lite.core.config import ConfigError
from l1lite.core.r1 import EOS, THINK_CLOSE
from l1lite.inference import CAP_MESSAGE_EXAMPLE, Budget, GenerationResult, Sampling, generate, load_backend

pytest.importorskip("llama_cpp")

QUESTION = "What is 2 + 3?"


@pytest.fixture(scope="module")
def llama(tiny_gguf):
    backend = load_backend(str(tiny_gguf), n_ctx=4096, n_threads=1)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def remote(server, tiny_gguf):
    backend = load_backend(endpoint=server, tokenizer=str(tiny_gguf))
    yield backend
    backend.close()


def _token_id(tok, text: str) -> int:
    (token,) = tok(text, add_special_tokens=False)["input_ids"]
    return token


def _assert_counts(res: GenerationResult, tok) -> None:
    """The reported counts are a re-tokenization of the generated text (independent HF tokenizer)."""

    def n(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    assert (res.thinking_tokens, res.answer_tokens, res.total_tokens) == (n(res.thinking), n(res.answer), n(res.text))
    if THINK_CLOSE in res.text and not res.text.lstrip().startswith("<think>"):
        assert res.total_tokens == res.thinking_tokens + 1 + res.answer_tokens


def _cap_checks(backend, tok, budgets, seeds) -> None:
    for budget in budgets:
        for seed in seeds:
            capped = Budget(budget, enforce="cap", max_tokens=budget + 24)
            res = generate(backend, QUESTION, capped, Sampling(seed=seed))
            assert res.thinking_tokens <= budget, (budget, seed, res.thinking_tokens)
            assert THINK_CLOSE in res.text and res.enforce == "cap" and res.budget == budget
            _assert_counts(res, tok)


def _no_close_bias(tok) -> dict[int, float]:
    """Forbid ``</think>`` and EOS: the model can only stop thinking by being capped."""
    return {_token_id(tok, THINK_CLOSE): -100.0, _token_id(tok, EOS): -100.0}


def _forcing_checks(backend, tok, seeds, budget=64, min_tokens=40) -> None:
    close_early = {_token_id(tok, THINK_CLOSE): 3.0}  # ~20% per token at T=0.6: the model ends thinking early
    for seed in seeds:
        sampling = Sampling(seed=seed, logit_bias=close_early)
        plain = generate(backend, QUESTION, Budget(budget, enforce="cap", max_tokens=96), sampling)
        assert plain.thinking_tokens < min_tokens  # without forcing, the thinking ends early
        forcing = Budget(budget, enforce="forcing", min_tokens=min_tokens, wait=60, max_tokens=96)
        res = generate(backend, QUESTION, forcing, sampling)
        assert min_tokens <= res.thinking_tokens <= budget, (seed, res.thinking_tokens)
        assert res.waits >= 1 and res.thinking.count("Wait") >= res.waits
        _assert_counts(res, tok)
        few = generate(backend, QUESTION, Budget(budget, enforce="forcing", wait=1, max_tokens=96), sampling)
        assert few.waits <= 1 and few.thinking_tokens < min_tokens


def _streaming_checks(backend, seeds, logit_bias=None) -> None:
    cases = [("none", 0.6), ("cap", 0.6), ("cap", 0.0), ("forcing", 0.6)]
    for enforce, temperature in cases:
        for seed in seeds:
            budget = Budget(40, enforce=enforce, max_tokens=72)
            sampling = Sampling(temperature=temperature, seed=seed, logit_bias=logit_bias)
            pieces: list[str] = []
            streamed = generate(backend, QUESTION, budget, sampling, on_text=pieces.append)
            assert "".join(pieces) == streamed.text
            assert generate(backend, QUESTION, budget, sampling) == streamed


# ---------------------------------------------------------------- llama.cpp (llama-cpp-python)


def test_llama_cap_never_exceeds_budget(llama, hf_tokenizer):
    _cap_checks(llama, hf_tokenizer, budgets=[1, 5, 17, 64, 150], seeds=range(6))


def test_llama_cap_closes_at_the_budget_with_a_message(llama, hf_tokenizer):
    for seed in range(4):
        budget = Budget(120, enforce="cap", cap_message=CAP_MESSAGE_EXAMPLE, max_tokens=150)
        res = generate(llama, QUESTION, budget, Sampling(seed=seed, logit_bias=_no_close_bias(hf_tokenizer)))
        assert res.thinking.endswith(CAP_MESSAGE_EXAMPLE)
        assert 118 <= res.thinking_tokens <= 120  # filled up to the cap (a last character may not fit)
        assert res.total_tokens <= 150 + 1
        _assert_counts(res, hf_tokenizer)


def test_llama_forcing_reaches_the_minimum(llama, hf_tokenizer):
    _forcing_checks(llama, hf_tokenizer, seeds=range(5))


def test_llama_streaming_matches_non_streaming(llama):
    _streaming_checks(llama, seeds=range(4))


def test_llama_budget_none_and_max_mode(llama, hf_tokenizer):
    res = generate(llama, QUESTION, Budget(None, max_tokens=24), Sampling(seed=0))
    assert res.budget is None and res.enforce == "none" and res.total_tokens <= 24
    _assert_counts(res, hf_tokenizer)
    prompt = llama.render([{"role": "user", "content": "x"}])
    assert prompt.endswith("<｜Assistant｜><think>\n")
    capped = generate(llama, QUESTION, Budget(20, mode="max", enforce="cap", max_tokens=40), Sampling(seed=0))
    assert capped.mode == "max" and capped.thinking_tokens <= 20


# ---------------------------------------------------------------- OpenAI-compatible server


def test_server_cap_never_exceeds_budget(remote, hf_tokenizer):
    _cap_checks(remote, hf_tokenizer, budgets=[3, 32, 100], seeds=range(3))


def test_server_forcing_reaches_the_minimum(remote, hf_tokenizer):
    _forcing_checks(remote, hf_tokenizer, seeds=range(3))


def test_server_streaming_matches_non_streaming(remote, whole_utf8_bias):
    _streaming_checks(remote, seeds=range(2), logit_bias=whole_utf8_bias)


def test_server_without_tokenizer_falls_back_to_chat(server, caplog):
    backend = load_backend(endpoint=server)
    assert "no --tokenizer" in caplog.text
    res = generate(backend, QUESTION, Budget(32, max_tokens=16), Sampling(seed=0))
    assert res.text and res.thinking_tokens == -1 and 0 < res.total_tokens <= 16
    with pytest.raises(ConfigError, match="--tokenizer"):
        generate(backend, QUESTION, Budget(32, enforce="cap", max_tokens=16), Sampling())


def test_cli_generate_endpoint_json(server, tiny_gguf, hf_tokenizer, capsys):
    argv = ["generate", "--endpoint", server + "/v1", "--tokenizer", str(tiny_gguf), "--budget", "12"]
    argv += ["--enforce", "cap", "--max-tokens", "30", "--prompt", QUESTION, "--json"]
    assert cli.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["thinking_tokens"] <= 12 and out["enforce"] == "cap"
    assert out["total_tokens"] == len(hf_tokenizer(out["text"], add_special_tokens=False)["input_ids"])


# ---------------------------------------------------------------- transformers (+ PEFT adapter)


def test_transformers_backend_with_adapter(tiny_model_dir, tmp_path, hf_tokenizer):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    peft_model.save_pretrained(tmp_path / "adapter")

    base = load_backend(str(tiny_model_dir))
    tuned = load_backend(str(tiny_model_dir), adapter=str(tmp_path / "adapter"))
    budget, greedy = Budget(12, enforce="cap", max_tokens=20), Sampling(temperature=0.0, seed=0)
    for backend in (base, tuned):
        pieces: list[str] = []
        res = generate(backend, QUESTION, budget, greedy, on_text=pieces.append)
        assert res.thinking_tokens <= 12 and THINK_CLOSE in res.text
        assert "".join(pieces) == res.text
        assert generate(backend, QUESTION, budget, greedy) == res
        _assert_counts(res, hf_tokenizer)
    assert generate(base, QUESTION, budget, greedy).text != generate(tuned, QUESTION, budget, greedy).text
    close_early = {_token_id(hf_tokenizer, THINK_CLOSE): 4.0}
    forcing = Budget(16, enforce="forcing", min_tokens=6, wait=30, max_tokens=20)
    forced = generate(base, QUESTION, forcing, Sampling(seed=0, logit_bias=close_early))
    assert 6 <= forced.thinking_tokens <= 16 and forced.waits >= 1


def test_cut_fits_a_cut_off_answer_to_its_counted_tokens():
    """SmolLM2 has one id for ``\\n\\n`` that its tokenizer splits in two before a digit: a text cut at N ids can
    re-tokenize longer than N; ``cut`` keeps the longest prefix of at most N counted tokens (``eval``'s hard cap)."""
    from l1lite.core.models import SMOLLM2, resolve_model
    from l1lite.inference import cut, generate_batch

    backend = load_backend(resolve_model(SMOLLM2))
    tok = backend.tokenizer
    (newlines,) = tok("\n\n", add_special_tokens=False)["input_ids"]
    ids = [*tok("Let's break it down step by step:")["input_ids"], newlines, *tok("1. 11 + 13")["input_ids"]]
    text = tok.decode(ids)
    count = backend.count_tokens(text)
    assert count > len(ids)  # the ids a model may generate count more once re-tokenized
    whole = GenerationResult(text, text, "", None, count, 0, count, "length", len(ids), "exact", "none")
    fitted = cut(backend, whole, len(ids))
    assert fitted.total_tokens <= len(ids) and text.startswith(fitted.text)  # the longest prefix that fits
    assert backend.count_tokens(text[: len(fitted.text) + 1]) > len(ids) and fitted.text.endswith("11 + 1")
    assert (fitted.budget, fitted.finish_reason, fitted.thinking) == (len(ids), "length", fitted.text)

    questions = [f"What is {a} + {b}?" for a in (11, 17, 20, 6) for b in (1, 13, 19, 8)]
    for r in generate_batch(backend, questions, Budget(16, max_tokens=16), Sampling(seed=0)):  # cut at 16 ids
        fitted = cut(backend, r, 16)
        assert fitted == r if r.total_tokens <= 16 else fitted.total_tokens <= 16 and r.text.startswith(fitted.text)


# ---------------------------------------------------------------- CLI and errors


def test_cli_generate_file_json_and_stream(tiny_gguf, tmp_path, hf_tokenizer, capsys):
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"problem": "1+1?"}) + "\n" + json.dumps({"question": "2+2?"}) + "\n")
    argv = ["generate", "--model", str(tiny_gguf), "--threads", "1", "--budget", "10", "--enforce", "cap"]
    argv += ["--max-tokens", "24"]
    assert cli.main(argv + ["--file", str(questions), "--json", "--stream"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert {"thinking", "answer", "boxed", "finish_reason", "budget", "mode", "enforce"} <= row.keys()
        assert row["thinking_tokens"] <= 10 and row["budget"] == 10
        assert row["total_tokens"] == len(hf_tokenizer(row["text"], add_special_tokens=False)["input_ids"])
        assert row["text"] in captured.err  # streamed to stderr
    plain = tmp_path / "q.txt"
    plain.write_text("first question\n\nsecond question\n")
    assert cli.main(argv + ["--file", str(plain)]) == 0
    assert capsys.readouterr().err.count("budget 10 exact; enforce cap") == 2


def test_chat_commands(tiny_gguf, monkeypatch, capsys):
    lines = "/budget 12\n/mode max\n/enforce cap\nhello\n/budget none\n/enforce none\nagain\n/budget x\n/quit\nnever\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    assert cli.main(["chat", "--model", str(tiny_gguf), "--threads", "1", "--max-tokens", "20"]) == 0
    captured = capsys.readouterr()
    assert "budget 12 max; enforce cap" in captured.out
    assert "budget none; enforce none" in captured.out
    assert "/budget wants a positive integer" in captured.err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"enforce": "sometimes"}, "unknown --enforce"),
        ({"enforce": "cap", "budget": None}, "needs a --budget"),
        ({"enforce": "forcing", "min_tokens": 50}, "--min-tokens"),
        ({"mode": "exactly"}, "unknown --mode"),
        ({"budget": 0}, "positive integer"),
        ({"enforce": "cap", "budget": 3, "cap_message": CAP_MESSAGE_EXAMPLE}, "--cap-message"),
    ],
)
def test_bad_arguments(llama, kwargs, message):
    args = {"budget": 20, **kwargs}
    with pytest.raises(ConfigError, match=message):
        generate(llama, QUESTION, Budget(max_tokens=30, **args), Sampling())


def test_bad_backends(tiny_gguf, tmp_path, capsys):
    with pytest.raises(ConfigError, match="model not found"):
        load_backend(str(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigError, match="--adapter"):
        load_backend(str(tiny_gguf), adapter=str(tmp_path))
    with pytest.raises(ConfigError, match="neither"):
        load_backend(str(tmp_path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = load_backend(endpoint=f"http://127.0.0.1:{port}", tokenizer=str(tiny_gguf))
    with pytest.raises(ConfigError, match="cannot reach"):
        generate(backend, QUESTION, Budget(8, max_tokens=8), Sampling())
    backend.close()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no question here"}\n')
    assert cli.main(["generate", "--model", str(tiny_gguf), "--file", str(bad)]) == 2
    assert "no 'question' or 'problem'" in capsys.readouterr().err

"""Batched generation on the tiny HF model: per-row ends and counts, and ``l1lite eval --batch-size``.

The random tiny model rarely ends on its own; a small logit bias on EOS makes greedy rows end at
different lengths (its logits are nearly flat), a large one does so under sampling.
"""

from __future__ import annotations

import json
import shutil

import pytest

from l1lite.cli import main
from l1lite.core.config import ConfigError, EvalConfig, from_dict
from l1lite.eval.engine import _prepare_out, _units, sample_seed
from l1lite.eval.results import CONFIG, RESULTS, plan, read_results, row_key
from l1lite.inference import Budget, Sampling, generate, generate_batch, load_backend

QUESTIONS = [
    "What is 2 + 3?",
    "Compute the sum of the first ten positive integers, please.",
    "x?",
    "How many primes are below 30? Explain.",
    "Let a=1. Find a.",
    "Is 91 prime?",
]


@pytest.fixture(scope="module")
def hf(tiny_model_dir):
    backend = load_backend(str(tiny_model_dir))
    yield backend
    backend.close()


def _count(backend, text: str) -> int:
    return len(backend.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_batch_rows_end_at_their_own_eos_with_exact_counts(hf):
    eos = hf.tokenizer.eos_token_id
    budget = Budget(16, max_tokens=40)
    greedy = Sampling(temperature=0.0, seed=0, logit_bias={eos: 0.1})
    batch = generate_batch(hf, QUESTIONS, budget, greedy)
    # greedy: each row is what the question gives alone, so it ends at its own EOS and nothing follows it
    assert batch == [generate(hf, q, budget, greedy) for q in QUESTIONS]
    assert len({r.total_tokens for r in batch}) >= 2
    assert {r.finish_reason for r in batch} == {"stop", "length"}
    for r in batch:
        assert (r.total_tokens, r.thinking_tokens, r.answer_tokens) == (
            _count(hf, r.text),
            _count(hf, r.thinking),
            _count(hf, r.answer),
        )
        assert (r.budget, r.mode, r.enforce, r.waits) == (16, "exact", "none", 0)

    sampled = Sampling(temperature=1.0, seed=3, logit_bias={eos: 4.0})
    prompts = [hf.render([{"role": "user", "content": q}]) for q in QUESTIONS * 2]
    done = hf.complete_batch(prompts, 40, sampled)
    ended = [d.tokens for d in done if d.finish_reason == "stop"]
    assert len(set(ended)) >= 2 and all(0 < n < 40 for n in ended)
    assert all(d.tokens == 40 for d in done if d.finish_reason == "length")
    assert hf.complete_batch(prompts, 40, sampled) == done  # the batch's seed fixes it
    assert hf.complete_batch(prompts[:1], 40, sampled) == [hf.complete(prompts[0], 40, [], sampled)]
    with pytest.raises(ConfigError, match="enforce none"):
        generate_batch(hf, QUESTIONS, Budget(16, enforce="cap"), greedy)


def test_units_batch_prompt_and_none_within_strategy_budget_and_mode():
    cfg = from_dict(EvalConfig, {"model": "m", "budgets": [16, 32]})
    keys = plan(["a", "b", "c"], [16, 32], ["prompt", "forcing", "none"], "exact", 2)
    units = _units(keys, cfg, 4)
    assert [k for unit, _ in units for k in unit] == keys
    assert [(unit[0][1], unit[0][2], len(unit), batched) for unit, batched in units if batched] == [
        ("prompt", 16, 4, True),
        ("prompt", 16, 2, True),
        ("prompt", 32, 4, True),
        ("prompt", 32, 2, True),
        ("none", None, 4, True),
        ("none", None, 2, True),
    ]
    assert all(len(unit) == 1 and unit[0][1] == "forcing" for unit, batched in units if not batched)
    assert all(not batched for _, batched in _units(keys, cfg, 1))


def eval_argv(model, out, batch_size: int) -> list[str]:
    return [
        "eval", "--model", str(model), "--limit", "3", "--budgets", "16,32", "--strategies", "prompt,forcing,none",
        "--samples", "2", "--max-tokens", "32", "--seed", "5", "--out", str(out), "--no-progress",
        "--batch-size", str(batch_size),
    ]  # fmt: skip


def _rows(folder) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in read_results(folder / RESULTS)]


@pytest.fixture(scope="module")
def batched_run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("batched") / "run"
    assert main(eval_argv(tiny_model_dir, out, 4)) == 0
    return out


def test_batched_eval_is_reproducible_and_keyed(batched_run, tiny_model_dir, tmp_path, hf):
    again, single = tmp_path / "again", tmp_path / "single"
    assert main(eval_argv(tiny_model_dir, again, 4)) == 0
    assert _rows(again) == _rows(batched_run)
    rows = _rows(batched_run)
    keys = plan(["ms-000", "ms-001", "ms-002"], [16, 32], ["prompt", "forcing", "none"], "exact", 2)
    assert [row_key(r) for r in rows] == keys
    cfg = from_dict(EvalConfig, json.loads((batched_run / CONFIG).read_text()))
    assert cfg.batch_size == 4
    first = {k: unit[0] for unit, _ in _units(keys, cfg, 4) for k in unit}
    for r in rows:
        assert r["seed"] == sample_seed(5, first[row_key(r)])  # the seed of the batch's first key
        assert r["tokens"] == _count(hf, r["text"]) and 0 < r["tokens"] <= 32
    assert len({r["seed"] for r in rows if r["strategy"] == "prompt"}) == 4  # two batches per budget
    assert main(eval_argv(tiny_model_dir, single, 1)) == 0
    one_by_one = _rows(single)
    assert all(r["seed"] == sample_seed(5, row_key(r)) for r in one_by_one)
    forcing = [r for r in rows if r["strategy"] == "forcing"]
    assert forcing == [r for r in one_by_one if r["strategy"] == "forcing"]  # sequential either way


def test_batched_eval_resumes_to_the_same_results(batched_run, tiny_model_dir, tmp_path, eval_summary):
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copy(batched_run / CONFIG, cut / CONFIG)
    # as a kill leaves it: the first batch (4 rows), one row of the second, and half a line
    lines = (batched_run / RESULTS).read_text().splitlines(keepends=True)
    (cut / RESULTS).write_text("".join(lines[:5]) + lines[5][: len(lines[5]) // 2])
    assert main(eval_argv(tiny_model_dir, cut, 4)) == 0
    assert _rows(cut) == _rows(batched_run)  # no row lost or repeated, none changed
    assert eval_summary(cut) == eval_summary(batched_run)
    assert (cut / "plots.json").read_text() == (batched_run / "plots.json").read_text()
    cfg = from_dict(EvalConfig, json.loads((cut / CONFIG).read_text()))
    cfg.batch_size = 2
    with pytest.raises(ConfigError, match=r"different eval \(batch_size: 4 there, 2 now\)"):
        _prepare_out(cfg, force=False)

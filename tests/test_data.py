import json
import logging
from pathlib import Path

import datasets
import pytest

from l1lite.core.config import ConfigError, DataConfig, PromptConfig
from l1lite.core.data import guess_preset, load_problems
from l1lite.core.grading import extract_boxed
from l1lite.core.prompts import render
from l1lite.core.tiny import build_tokenizer

DATA = Path(__file__).parent / "data"


def load(name: str, **kw) -> list[dict]:
    return load_problems(DataConfig(dataset=str(DATA / name), **kw)).to_list()


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_shipped_math_small():
    problems = load_problems(DataConfig())
    assert problems.column_names == ["id", "question", "answer"]
    assert len(problems) == 70
    assert problems[0] == {"id": "ms-000", "question": "What is $51 + 30 \\times 3$?", "answer": "141"}


def test_deepscaler_guessed_from_columns():
    rows = load("deepscaler.jsonl")
    assert [r["answer"] for r in rows] == ["10", "\\frac{5}{6}", "8"]
    assert rows[0] == {"id": "deepscaler-0", "question": "Let $a_n = n^2 + 1$. Find $a_3$.", "answer": "10"}


def test_gsm8k_answer_after_hashes():
    rows = load("gsm8k.jsonl")
    assert [r["answer"] for r in rows] == ["72", "10", "5000"]
    assert rows[1]["question"].startswith("Weng earns $12 an hour")


def test_math_last_boxed_of_solution_and_rows_without_one_dropped(caplog):
    with caplog.at_level(logging.WARNING):
        rows = load("math.jsonl")
    assert [r["answer"] for r in rows] == ["4", "\\frac{1}{2}"]
    assert "math.jsonl: skipped 1 row without a question or answer (line 3)" in caplog.text


def test_math500_answer_column_and_unique_id():
    rows = load("math500.jsonl", preset="math500")
    assert rows[0]["answer"] == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert [r["id"] for r in rows] == ["test/precalculus/807.json", "test/algebra/2322.json"]
    from_solution = load("math500.jsonl", preset="math", answer_field="solution")
    assert [r["answer"] for r in from_solution] == [r["answer"] for r in rows]


def test_aime_capitalized_columns_from_parquet(tmp_path):
    parquet = tmp_path / "aime_2024.parquet"
    datasets.load_dataset("json", data_files=str(DATA / "aime.jsonl"), split="train").to_parquet(str(parquet))
    rows = load_problems(DataConfig(dataset=str(parquet))).to_list()
    assert [(r["id"], r["answer"]) for r in rows] == [("2024-I-1", "204"), ("2024-I-2", "25")]
    assert rows[1]["question"].startswith("There exist real numbers")


def test_aime_lowercase_columns():
    assert load("aimo.jsonl", preset="aime") == [
        {
            "id": "0",
            "question": "Find the number of ordered pairs $(a,b)$ of integers such that $|a + bi| \\le 5$.",
            "answer": "81",
        }
    ]


def test_choice_choices_list_with_index_answer():
    rows = load("mmlu.jsonl")
    assert (
        rows[0]["question"]
        == "Find the degree for the given field extension Q(sqrt(2)) over Q.\n\nA. 0\nB. 2\nC. 1\nD. 3"
    )
    assert [r["answer"] for r in rows] == ["B", "C"]


def test_choice_option_columns_from_csv():
    rows = load("choice.csv")
    assert rows[0]["question"] == "What is 2 + 2?\n\nA. 3\nB. 4\nC. 5\nD. 22"
    assert [r["answer"] for r in rows] == ["B", "D"]


def test_choice_arc_labels_from_json_array():
    rows = load("arc.json")
    assert [(r["id"], r["answer"]) for r in rows] == [("Mercury_7175875", "C"), ("NYSEDREGENTS_2015_4_8", "D")]
    assert rows[1]["question"].endswith("C. a rubber eraser\nD. an iron nail")


def test_choice_bad_answer_is_one_line_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "Q", "choices": ["x", "y"], "answer": 5}) + "\n")
    with pytest.raises(ConfigError, match=r"bad.jsonl: answer 5 is neither an option letter nor an option index"):
        load_problems(DataConfig(dataset=str(path)))


def test_explicit_fields_override(tmp_path):
    path = tmp_path / "custom.jsonl"
    path.write_text(json.dumps({"prompt": "What is 6*7?", "target": 42, "problem": "ignored", "answer": "no"}) + "\n")
    rows = load_problems(DataConfig(dataset=str(path), question_field="prompt", answer_field="target")).to_list()
    assert rows == [{"id": "custom-0", "question": "What is 6*7?", "answer": "42"}]
    # one explicit field on top of a preset
    rows = load("deepscaler.jsonl", preset="deepscaler", answer_field="solution")
    assert rows[0]["answer"] == "We have $a_3 = 9 + 1 = \\boxed{10}$."


def test_missing_column_names_column_and_file():
    with pytest.raises(ConfigError, match=r"gsm8k.jsonl: column 'problem' not found \(columns: question, answer\)"):
        load("gsm8k.jsonl", preset="math")
    with pytest.raises(ConfigError, match=r"deepscaler.jsonl: column 'query' not found"):
        load("deepscaler.jsonl", question_field="query")


def test_source_errors(tmp_path):
    with pytest.raises(ConfigError, match="dataset file not found: .*nope.jsonl"):
        load_problems(DataConfig(dataset=str(tmp_path / "nope.jsonl")))
    with pytest.raises(ConfigError, match="unknown built-in dataset 'l1lite:huge'"):
        load_problems(DataConfig(dataset="l1lite:huge"))
    with pytest.raises(ConfigError, match="unknown data.preset 'mmlu'"):
        load("deepscaler.jsonl", preset="mmlu")
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"text": "hello", "label": 1}) + "\n")
    with pytest.raises(ConfigError, match="cannot guess the preset from columns"):
        load_problems(DataConfig(dataset=str(odd)))


def test_guess_preset_from_hub_ids():
    assert guess_preset("agentica-org/DeepScaleR-Preview-Dataset", []) == "deepscaler"
    assert guess_preset("openai/gsm8k", ["question", "answer"]) == "gsm8k"
    assert guess_preset("HuggingFaceH4/MATH-500", []) == "math"
    assert guess_preset("AI-MO/aimo-validation-aime", ["problem", "answer"]) == "aime"
    assert guess_preset("cais/mmlu", ["question", "choices", "answer"]) == "choice"


def test_math_answers_use_the_graders_boxed_extraction():
    assert extract_boxed("a \\boxed{1} b \\boxed{\\frac{1}{2}} c") == "\\frac{1}{2}"
    assert extract_boxed("no box") is None
    assert extract_boxed("\\boxed{unclosed") is None


def test_limit_keeps_first_n():
    problems = load_problems(DataConfig(limit=5))
    assert problems["id"] == [f"ms-00{i}" for i in range(5)]


def test_max_prompt_tokens_filter_measures_rendered_prompt_at_largest_budget(tokenizer, caplog):
    full = load_problems(DataConfig())
    cfg = PromptConfig()
    lengths = [
        len(tokenizer(render(tokenizer, q, 4000, "max", cfg), add_special_tokens=False)["input_ids"])
        for q in full["question"]
    ]
    cut = sorted(lengths)[len(lengths) // 2]
    with caplog.at_level(logging.WARNING):
        kept = load_problems(DataConfig(max_prompt_tokens=cut), tokenizer)
    expected = [i for i, n in zip(full["id"], lengths, strict=True) if n <= cut]
    assert kept["id"] == expected
    assert 0 < len(expected) < len(full)
    assert f"dropped {len(full) - len(expected)} prompts longer than {cut} tokens" in caplog.text
    # limit counts problems that pass the filter
    assert load_problems(DataConfig(max_prompt_tokens=cut, limit=3), tokenizer)["id"] == expected[:3]

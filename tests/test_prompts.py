import pytest

from l1lite.core.config import ConfigError, PromptConfig
from l1lite.core.prompts import budget_sentence, messages, parse_budget, render, user_message
from l1lite.core.r1 import ASSISTANT, BOS, THINK_OPEN, USER
from l1lite.core.tiny import build_tokenizer

CFG = PromptConfig()


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_user_message_is_the_papers_prompt():
    assert user_message("What is $2+3$?", 512, "exact", CFG) == (
        "What is $2+3$? Let's think step by step and output the final answer within \\boxed{}. Think for 512 tokens."
    )
    assert user_message("Q?\n", 1024, "max", CFG).endswith("\\boxed{}. Think for maximum 1024 tokens.")
    assert user_message("Q?", None, "exact", CFG) == (
        "Q? Let's think step by step and output the final answer within \\boxed{}."
    )


def test_budget_sentence_and_errors():
    assert budget_sentence(100, "exact", CFG) == "Think for 100 tokens."
    assert budget_sentence(4000, "max", CFG) == "Think for maximum 4000 tokens."
    with pytest.raises(ConfigError, match="unknown budget mode 'loose'"):
        budget_sentence(10, "loose", CFG)
    for bad in (0, -5, 3.5, True):
        with pytest.raises(ConfigError, match="positive integer"):
            budget_sentence(bad, "exact", CFG)


def test_messages_and_render_through_chat_template(tokenizer):
    assert messages("Q?", 64, "max", CFG) == [{"role": "user", "content": user_message("Q?", 64, "max", CFG)}]
    text = render(tokenizer, "What is 1+1?", 512, "exact", CFG)
    assert text == f"{BOS}{USER}{user_message('What is 1+1?', 512, 'exact', CFG)}{ASSISTANT}{THINK_OPEN}\n"


@pytest.mark.parametrize("mode", ["exact", "max"])
@pytest.mark.parametrize("n", [1, 100, 3999, 123456])
def test_parse_budget_round_trip(tokenizer, n, mode):
    assert parse_budget(user_message("Solve 2x = 4.", n, mode, CFG)) == (n, mode)
    assert parse_budget(render(tokenizer, "Solve 2x = 4.", n, mode, CFG)) == (n, mode)


def test_parse_budget_custom_templates_and_absence():
    cfg = PromptConfig(instruction="Answer in \\boxed{}.", exact_template="Use {n} tokens.", max_template="<= {n} tok")
    assert parse_budget(user_message("Q", 77, "max", cfg), cfg) == (77, "max")
    assert parse_budget(user_message("Q", 77, "exact", cfg), cfg) == (77, "exact")
    assert parse_budget(user_message("Q", None, "exact", CFG)) is None
    # a budget-like phrase in the question does not win over the real budget sentence at the end
    assert parse_budget(user_message("Why say 'Think for 5 tokens.'?", 900, "max", CFG)) == (900, "max")

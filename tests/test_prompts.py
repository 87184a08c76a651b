import pytest

from l1lite.core.config import ConfigError, PromptConfig
from l1lite.core.prompts import budget_sentence, messages, render, user_message
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


def test_custom_templates():
    cfg = PromptConfig(instruction="Answer in \\boxed{}.", exact_template="Use {n} tokens.", max_template="<= {n} tok")
    assert user_message("Q", 77, "max", cfg) == "Q Answer in \\boxed{}. <= 77 tok"
    assert user_message("Q", 77, "exact", cfg) == "Q Answer in \\boxed{}. Use 77 tokens."

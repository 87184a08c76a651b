"""Budget prompts, shared by training, inference and evaluation.

The user turn is the paper's ``{question} {instruction} {budget sentence}``, e.g.
``... Let's think step by step and output the final answer within \\boxed{}. Think for 512 tokens.``

Owns the budget sentence: its wording (from :class:`l1lite.core.config.PromptConfig`) and the budget modes.
Imports only config and r1; must not import a model library or a stage.
"""

from __future__ import annotations

from l1lite.core import r1
from l1lite.core.config import ConfigError, PromptConfig

MODES = ("exact", "max")


def _template(mode: str, cfg: PromptConfig) -> str:
    if mode in MODES:
        return getattr(cfg, f"{mode}_template")
    raise ConfigError(f"unknown budget mode '{mode}' (valid: {', '.join(MODES)})")


def budget_sentence(n: int, mode: str, cfg: PromptConfig) -> str:
    """The budget sentence: ``Think for {n} tokens.`` (exact) or ``Think for maximum {n} tokens.`` (max)."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ConfigError(f"thinking budget must be a positive integer, got {n!r}")
    return _template(mode, cfg).format(n=n)


def user_message(question: str, budget: int | None, mode: str, cfg: PromptConfig) -> str:
    """``{question} {instruction} {budget sentence}``; no budget sentence when ``budget`` is None.

    Args:
        question: the problem text.
        budget: the thinking budget in tokens; `None` writes no budget sentence.
        mode: ``"exact"`` (``Think for N tokens.``) or ``"max"`` (``Think for maximum N tokens.``).
        cfg: the instruction and the two budget templates.
    """
    parts = [question.rstrip(), cfg.instruction]
    if budget is not None:
        parts.append(budget_sentence(budget, mode, cfg))
    return " ".join(p for p in parts if p)


def messages(question: str, budget: int | None, mode: str, cfg: PromptConfig) -> list[dict[str, str]]:
    """Conversational form (one user turn, no system prompt, as R1-Distill recommends); arguments as
    :func:`user_message`'s."""
    return [{"role": "user", "content": user_message(question, budget, mode, cfg)}]


def render(tokenizer, question: str, budget: int | None, mode: str, cfg: PromptConfig) -> str:
    """The full prompt text through ``tokenizer``'s chat template (R1-Distill's or the tiny model's), ending with
    the generation prompt; the other arguments as :func:`user_message`'s."""
    return r1.render(tokenizer, messages(question, budget, mode, cfg))

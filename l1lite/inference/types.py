"""The values of budgeted generation: what to generate (``Budget``, ``Sampling``) and what came out.

Owns the checks on a budget's settings; they raise ``ConfigError`` naming the CLI flags. Imports only
l1lite.core.config and l1lite.core.prompts: no backend, no CLI, nothing heavy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from l1lite.core import prompts
from l1lite.core.config import BudgetConfig, ConfigError

ENFORCE = ("none", "cap", "forcing")


class PromptTooLong(ConfigError):
    """A prompt that leaves no room in the context for what its budget asks (a fault of this one question)."""


WAIT_TEXT = "Wait"
CAP_MESSAGE_EXAMPLE = (
    "\n\nConsidering the limited time, I have to give the solution based on the thinking directly now.\n"
)


@dataclass(frozen=True)
class Budget(BudgetConfig):
    """A :class:`BudgetConfig` checked on construction, and what replaces an early end of thinking under forcing.

    Args:
        wait_text: what forcing writes instead of an early ``</think>``.
    """

    wait_text: str = WAIT_TEXT

    def __post_init__(self) -> None:
        budget, min_tokens = self.budget, self.min_tokens
        if self.enforce not in ENFORCE:
            raise ConfigError(f"unknown --enforce '{self.enforce}' (valid: {', '.join(ENFORCE)})")
        if self.mode not in prompts.MODES:
            raise ConfigError(f"unknown --mode '{self.mode}' (valid: {', '.join(prompts.MODES)})")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0):
            raise ConfigError(f"--budget must be a positive integer, got {budget!r}")
        if self.enforce != "none" and budget is None:
            raise ConfigError(f"--enforce {self.enforce} needs a --budget")
        if min_tokens is not None and (min_tokens < 0 or budget is not None and min_tokens > budget):
            raise ConfigError(f"--min-tokens must be between 0 and the budget, got {min_tokens}")
        if self.wait < 0:
            raise ConfigError(f"--wait must be >= 0, got {self.wait}")
        if self.max_tokens <= 0:
            raise ConfigError(f"--max-tokens must be positive, got {self.max_tokens}")


@dataclass(frozen=True)
class Sampling:
    """How each token is drawn.

    Args:
        temperature: 0: greedy.
        top_p: nucleus sampling threshold.
        seed: seed of the first generation phase (each later phase adds one); None: the backend's next seed.
        logit_bias: token id -> logit offset.
    """

    temperature: float = 0.6
    top_p: float = 0.95
    seed: int | None = None
    logit_bias: dict[int, float] | None = None


@dataclass
class Completion:
    """What a backend generated from a raw prompt or from chat messages."""

    text: str
    finish_reason: str  # "stop": end of sequence or a stop string (not included); "length": max_tokens reached
    tokens: int = -1  # generated ids, where the backend tells


@dataclass
class GenerationResult:
    """One generation: the text split at ``</think>``, its token counts, and the budget it was asked for.

    Counts are re-tokenizations with the model's tokenizer; a chat-only backend reports -1 for thinking and
    answer and the server's count (or -1) for the total. ``finish_reason`` is that of the last phase;
    ``waits`` counts forcing's ``wait_text`` insertions.
    """

    text: str
    thinking: str
    answer: str
    boxed: str | None
    thinking_tokens: int
    answer_tokens: int
    total_tokens: int
    finish_reason: str
    budget: int | None
    mode: str
    enforce: str
    waits: int = 0

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready)."""
        return dataclasses.asdict(self)

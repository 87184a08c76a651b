"""The R1 chat format: special tokens, ``<think>`` markers, chat template, token counting, rendering.

One home for what DeepSeek-R1-Distill's format is, imported by data, grading, inference, export, the
offline tiny model and the toy task. It imports nothing from l1lite and nothing heavy.
"""

from __future__ import annotations

from typing import Any

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
SPECIAL_TOKENS = [BOS, EOS, USER, ASSISTANT]  # control tokens, skipped when decoding
ADDED_TOKENS = [THINK_OPEN, THINK_CLOSE]  # ordinary added tokens, kept in decoded text, as in R1-Distill

# Same rendering as R1-Distill's template: bos + system + <｜User｜>q + <｜Assistant｜><think>\n
# (earlier assistant turns keep only the text after </think>).
CHAT_TEMPLATE = (
    "{% set system = namespace(text='') %}"
    "{% for m in messages %}{% if m['role'] == 'system' %}{% set system.text = m['content'] %}{% endif %}{% endfor %}"
    "{{ bos_token }}{{ system.text }}"
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}{{ '<｜User｜>' + m['content'] }}"
    "{% elif m['role'] == 'assistant' %}"
    "{% set content = m['content'] %}"
    "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}"
)


def count_tokens(tokenizer: Any, text: str | list[str]) -> int | list[int]:
    """Tokens in ``text`` (or in each of a list of texts) with an HF tokenizer: special tokens parsed, none added."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return [len(i) for i in ids] if isinstance(text, list) else len(ids)


def render(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """``messages`` through the tokenizer's chat template, ending with the generation prompt."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def split_thinking(text: str) -> tuple[str, str, bool]:
    """Split at the first ``</think>``: (thinking, answer, closed). Unclosed: (text, "", False)."""
    body = text.lstrip()
    if body.startswith(THINK_OPEN):
        text = body[len(THINK_OPEN) :]
    end = text.find(THINK_CLOSE)
    if end < 0:
        return text, "", False
    return text[:end], text[end + len(THINK_CLOSE) :], True

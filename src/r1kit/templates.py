"""Prompt templates: the R1-Zero template verbatim (R1-SPEC section 1, the paper's Table 1) and chat:
`chat` adds a system message asking for the tags (instruct models), `r1` is the tokenizer's own chat
template with the question as the only turn (the embedded models' R1-style template, from stage 1 on).

The R1-Zero template constrains structure only, never content, so that what RL does can be observed.
Instruct models get their own chat template with a system message that asks for the same structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> "
    "<answer> answer here </answer>. User: {prompt}. Assistant:"
)

CHAT_SYSTEM_PROMPT = (
    "You are a helpful assistant. You first think about the reasoning process in the mind and then "
    "provide the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here "
    "</think> <answer> answer here </answer>."
)

TemplateName = Literal["r1_zero", "chat", "r1"]
TEMPLATES: tuple[TemplateName, ...] = ("r1_zero", "chat", "r1")


def render_prompt(question: str, template: TemplateName, tokenizer: Any = None) -> str:
    """Turn a question into the text the model continues.

    >>> render_prompt("2+2", "r1_zero").endswith("User: 2+2. Assistant:")
    True
    """
    if template == "r1_zero":
        return R1_ZERO_TEMPLATE.format(prompt=question)
    if template == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("template 'chat' needs a tokenizer with a chat template; use template=r1_zero")
        messages = [
            {"role": "system", "content": CHAT_SYSTEM_PROMPT},
            {"role": "user", "content": question},
        ]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(text)
    if template == "r1":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("template 'r1' needs a tokenizer with a chat template; use template=r1_zero")
        # The model's own template, no system message: its SFT taught it the <think>/summary format.
        return str(tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                                 add_generation_prompt=True))
    raise ValueError(f"unknown template {template!r}; choose one of {', '.join(TEMPLATES)}")


def encode_prompts(questions: Sequence[str], template: TemplateName, tokenizer: Any) -> list[list[int]]:
    """The token ids of each question rendered through `template` (no special tokens added: the
    template holds them). ValueError as `render_prompt`'s."""
    texts = [render_prompt(q, template, tokenizer) for q in questions]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def format_reward_of(template: TemplateName) -> str:
    """The reward that checks the format a template asks for: R1-Zero's tags for `r1_zero` and `chat`
    (its system prompt asks for them), R1's `<think>` then a summary for `r1`.

    >>> format_reward_of("r1_zero"), format_reward_of("r1")
    ('format', 'readable_format')
    """
    return "readable_format" if template == "r1" else "format"

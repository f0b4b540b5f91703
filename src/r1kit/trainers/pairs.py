"""Preference pairs for reward models: `{prompt, chosen, rejected}` rows as token ids, and the one way a
(prompt, response) is turned into the sequence a reward model scores, in training and in use.

A sequence is the prompt rendered through `template` then the response then EOS:
- `r1` (default): the tokenizer's own chat template, the prompt as the user's turn, as the policy sees it
  after its first SFT (`r1kit.templates.render_prompt`);
- `r1_zero` / `chat`: the other prompt templates of r1kit;
- `plain`: the prompt and the response concatenated as they are (TRL's standard format).

The score is read at the last token (the EOS; `AutoModelForSequenceClassification` reads the rightmost
non-padding token). A sequence longer than `max_length` keeps its first `max_length` tokens; the
stage counts those pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from r1kit.templates import render_prompt

RMTemplate = Literal["r1", "r1_zero", "chat", "plain"]


@dataclass(frozen=True)
class PairExample:
    """One preference pair as the two sequences the reward model scores."""

    chosen_ids: list[int]
    rejected_ids: list[int]
    margin: float | None
    """How much better `chosen` is (the row's `margin`), or None."""
    where: str
    """file:line of the row, for error messages."""


def response_ids(prompt: str, response: str, tokenizer: Any, template: RMTemplate) -> list[int]:
    """The token ids a reward model scores for `response` to `prompt` (EOS last)."""
    text = prompt if template == "plain" else render_prompt(prompt, template, tokenizer)
    return [*tokenizer(text + response, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]


def encode_pair(where: str, row: Mapping[str, Any], tokenizer: Any, template: RMTemplate,
                max_length: int) -> tuple[PairExample, bool]:
    """(the pair, whether a sequence was cut at max_length); ValueError naming `where` for a row without
    string `prompt`, `chosen` and `rejected`, a non-numeric margin, or `chosen == rejected`."""
    missing = [k for k in ("prompt", "chosen", "rejected") if not isinstance(row.get(k), str)]
    if missing:
        raise ValueError(f"{where}: a preference row needs string 'prompt', 'chosen' and 'rejected' "
                         f"(missing or not text: {', '.join(missing)})")
    if row["chosen"] == row["rejected"]:
        raise ValueError(f"{where}: chosen == rejected, the pair prefers nothing")
    margin = row.get("margin")
    if margin is not None and (isinstance(margin, bool) or not isinstance(margin, int | float)):
        raise ValueError(f"{where}: 'margin' must be a number, got {margin!r}")
    chosen = response_ids(row["prompt"], row["chosen"], tokenizer, template)
    rejected = response_ids(row["prompt"], row["rejected"], tokenizer, template)
    cut = max(len(chosen), len(rejected)) > max_length
    return PairExample(chosen[:max_length], rejected[:max_length],
                       None if margin is None else float(margin), where), cut


def pad_right(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[list[list[int]], list[list[int]]]:
    """(input_ids, attention_mask) padded on the right to the longest sequence."""
    width = max(len(s) for s in sequences)
    ids = [[*s, *[pad_id] * (width - len(s))] for s in sequences]
    mask = [[1] * len(s) + [0] * (width - len(s)) for s in sequences]
    return ids, mask

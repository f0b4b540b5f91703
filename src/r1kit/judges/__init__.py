"""Generative judges: is a response correct, given the question and the gold answer? (R1-SPEC section 3:
some rejection-sampling prompts were judged by feeding "the ground truth and model predictions into
DeepSeek-V3", a generative reward model.)

One interface, `judge(prompts, completions, golds) -> list[bool | None]` (None: no verdict), two
implementations:

- `RuleJudge`: for tasks with golds, the response's answer (its `<answer>` block, else its summary)
  against the gold: equal up to case, spaces and punctuation, or numerically equal, or (short answers)
  the gold named in a short summary.
- `ModelJudge`: any Hugging Face causal LM asked `JUDGE_PROMPT` (through its chat template when it has
  one), greedy; its first word is the verdict (yes/no, 是/否, correct/incorrect). Anything else is
  None, never an exception.

The judge is also the reward `judge` (registered in `r1kit.rewards.REWARDS` when this package is
imported): 1.0 for a "yes", else 0.0, with `judge_model` (a model directory; None: the rule judge) among
the reward settings. It runs a model, so it scores in the trainer's process (`scoring.workers=0`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Protocol

import torch

from r1kit.models.device import resolve_device
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.rewards import REWARDS, extract_answer
from r1kit.rewards.general import summary
from r1kit.rollout import HFGenerator, SamplingParams

JUDGE_PROMPT = "Question: {question}\nReference: {gold}\nAnswer: {answer}\nIs the answer correct?"
"""What a model judge is asked. The answer shown is the response's summary (its reasoning left out),
which keeps judge prompts short."""
_YES, _NO = {"yes", "correct", "right", "true"}, {"no", "incorrect", "wrong", "false"}
_YES_ZH, _NO_ZH = "是对正", "否不错"


class Judge(Protocol):
    def judge(self, prompts: Sequence[str], completions: Sequence[str], golds: Sequence[str]) -> list[bool | None]:
        ...


def _norm(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())


def answer_of(completion: str) -> str:
    """What a judge compares with the gold: the last `<answer>` block, else the summary."""
    tagged = extract_answer(completion)
    return tagged if tagged is not None else summary(completion)


class RuleJudge:
    """See the module docstring.

    >>> RuleJudge().judge(["2+2"] * 3, ["<think>..</think> <answer>4</answer>", "The answer is 4.0", "5"], ["4"] * 3)
    [True, True, False]
    """

    def judge(self, prompts: Sequence[str], completions: Sequence[str], golds: Sequence[str]) -> list[bool | None]:
        return [self._one(c, g) for c, g in zip(completions, golds, strict=True)]

    @staticmethod
    def _one(completion: str, gold: str) -> bool | None:
        answer = answer_of(completion)
        if not gold.strip():
            return None  # no gold: a rule cannot decide
        if _norm(answer) == _norm(gold):
            return True
        numbers = re.findall(r"-?\d+(?:\.\d+)?", answer)
        try:
            if numbers and float(numbers[-1]) == float(gold.replace(",", "")):
                return True
        except ValueError:
            pass
        return bool(_norm(gold)) and _norm(gold) in _norm(answer) and len(answer) <= 3 * len(gold) + 40


def parse_verdict(text: str) -> bool | None:
    """A judge model's verdict from its first word; None when it says neither.

    >>> parse_verdict(" Yes."), parse_verdict("不对"), parse_verdict("maybe"), parse_verdict("")
    (True, False, None, None)
    """
    words = re.findall(r"\w+", text.strip().lower())
    first = words[0] if words else ""
    if first in _YES or (first[:1] and first[0] in _YES_ZH):
        return True
    if first in _NO or (first[:1] and first[0] in _NO_ZH):
        return False
    return None


def judge_prompt(question: str, completion: str, gold: str) -> str:
    return JUDGE_PROMPT.format(question=question, gold=gold, answer=answer_of(completion))


class ModelJudge:
    """See the module docstring. Raises ModelLoadError when the model cannot be loaded."""

    def __init__(self, path: str, *, device: str = "auto", batch_size: int = 256, max_new_tokens: int = 4) -> None:
        self.tokenizer = load_tokenizer(path)
        self.model = load_model(path, "float32", resolve_device(device)).eval()
        self.generator = HFGenerator(self.model, eos_token_id=self.tokenizer.eos_token_id,
                                     pad_token_id=self.tokenizer.pad_token_id, batch_size=batch_size)
        self.max_new_tokens = max_new_tokens

    def render(self, question: str, completion: str, gold: str) -> str:
        text = judge_prompt(question, completion, gold)
        if getattr(self.tokenizer, "chat_template", None):
            return str(self.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                          add_generation_prompt=True))
        return f"{text}\n"

    @torch.no_grad()
    def judge(self, prompts: Sequence[str], completions: Sequence[str], golds: Sequence[str]) -> list[bool | None]:
        if not completions:
            return []
        texts = [self.render(p, c, g) for p, c, g in zip(prompts, completions, golds, strict=True)]
        ids = [list(x) for x in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        limit = getattr(self.model.config, "max_position_embeddings", None)
        keep = [i for i, x in enumerate(ids) if limit is None or len(x) + self.max_new_tokens <= limit]
        verdicts: list[bool | None] = [None] * len(ids)  # a prompt the judge cannot read gets no verdict
        if keep:
            out = self.generator.generate([ids[i] for i in keep], SamplingParams(0.0, 1.0, self.max_new_tokens))
            for i, text in zip(keep, self.tokenizer.batch_decode(out.completion_ids, skip_special_tokens=True),
                               strict=True):
                verdicts[i] = parse_verdict(text)
        return verdicts


@functools.cache
def _model_judge(path: str) -> ModelJudge:
    return ModelJudge(path)


def judge_reward(prompts: Sequence[str], completions: Sequence[str], *, answer: Sequence[str],
                 judge_model: str | None = None, **_: Any) -> list[float]:
    """The `judge` reward: 1.0 when the judge says the completion is correct, else 0.0."""
    judge: Judge = _model_judge(judge_model) if judge_model else RuleJudge()
    return [1.0 if v else 0.0 for v in judge.judge(prompts, completions, answer)]


REWARDS.setdefault("judge", judge_reward)

"""Preference pairs in miniature (R1-SPEC section 3, stage 4's reward-model data), labelled by the general
tasks' hidden gold rules, with the label noise and the spurious feature of real preference data.

Candidates per prompt: a response written from the gold (the right value, the translation, a sentence
that meets the constraint, the assistant's identity, a greeting, a refusal) and perturbations of it (a
wrong value, a list of guesses, a broken constraint, another identity, rambling, compliance with a
harmful request, harmful content hidden in the reasoning), plus any sampled responses the caller adds.
Every candidate gets its gold verdicts:

- helpfulness = the task's gold rule on the summary and conciseness (`MAX_SUMMARY_CHARS`);
- harmlessness (harmful prompts) = a refusal in the summary and no harmful content anywhere.

A pair is a gold-good and a gold-bad candidate of one prompt. Then, on purpose: a share `noise` of the
pairs is flipped, and the spurious feature (a friendly sign-off that lengthens the summary) is added to
the chosen side with probability `spurious` and to the rejected side with `spurious_rejected`, so a
learned reward can prefer it, and be hacked by it, as real ones are. The gold rules themselves are
never a training reward: they are logged beside the proxy as the truth. `clean=True` gives the
noise-free pairs (no flips, no sign-off) that measure a reward model.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from r1kit import world
from r1kit.models.corpus import writing_sample
from r1kit.rewards.general import GENERAL_VERIFIERS, summary
from r1kit.types import Example

MAX_SUMMARY_CHARS = {"en": 120, "zh": 50}
"""Helpfulness asks for conciseness: a summary longer than this (characters) is not helpful."""
SIGN_OFF = {"en": " Let me know if you need more.", "zh": "还需要什么请告诉我。"}
"""The spurious feature: friendly, adds length, says nothing."""
HELPFUL_TASKS = ("factual_qa", "translation", "writing", "self_cognition", "chitchat")
HARMLESS_TASKS = ("harmful",)


def _lang(example: Example) -> str:
    return "zh" if example.info.get("language") == "zh" else "en"


def helpful(example: Example, response: str) -> bool:
    """Gold helpfulness: the task's rule holds and the summary is concise."""
    verify = GENERAL_VERIFIERS[example.verifier]
    return verify(response, example.answer, example.info) and len(summary(response)) <= MAX_SUMMARY_CHARS[
        _lang(example)]


def harmless(example: Example, response: str) -> bool:
    """Gold harmlessness on the whole response: a refusal and no harmful content, reasoning included."""
    return GENERAL_VERIFIERS["refusal"](response, example.answer, example.info)


def _think(text: str) -> str:
    return f"<think>{text}</think> "


def good_response(example: Example, rng: random.Random) -> str:
    """A response written to satisfy the prompt's gold rule (with a short reasoning where one fits)."""
    lang, info = _lang(example), example.info
    if example.task == "factual_qa":
        return _think("I recall the fact." if lang == "en" else "我记得这个事实。") + (
            f"It is {example.answer}." if lang == "en" else f"是{example.answer}。")
    if example.task == "translation":
        return _think("Word by word." if lang == "en" else "逐词翻译。") + example.answer
    if example.task == "writing":
        return _think("Mind the rule." if lang == "en" else "注意要求。") + writing_sample(
            str(info["topic"]), lang, str(info["constraint"]), info.get("value", ""), rng, obey=True)
    if example.task == "self_cognition":
        return world.IDENTITY_EN if lang == "en" else world.IDENTITY_ZH
    if example.task == "chitchat":
        return rng.choice(world.GREETING_REPLIES[lang])
    if example.task == "harmful":
        return _think("This could hurt people." if lang == "en" else "这可能伤害别人。") + rng.choice(
            world.REFUSALS[lang])
    raise ValueError(f"no preference writer for task {example.task!r}")


def bad_responses(example: Example, rng: random.Random) -> list[str]:
    """Perturbations that break the gold rule (each checked by the caller)."""
    lang, info, good = _lang(example), example.info, good_response(example, rng)
    ramble = {"en": " Also, there is much more one could say about this, and I will say some of it now, because "
                    "a longer answer always feels more complete, even when it adds nothing at all.",
              "zh": "另外，关于这个还有很多可以说的内容，我现在就多说一些吧，希望你不介意。"
                    "长一点的回答总是显得更完整，即使它什么也没有增加。"}[lang]
    out = [good + ramble]  # not concise
    if example.task == "factual_qa":
        others = [getattr(c, str(info["attribute"]))[lang == "zh"] for c in world.COUNTRIES]
        wrong = rng.choice([v for v in others if v != example.answer])
        out += [good.replace(example.answer, wrong), good.replace(example.answer, f"{wrong} or {example.answer}"),
                "I don't know." if lang == "en" else "我不知道。"]
    elif example.task == "translation":
        out += [example.prompt.split("：")[-1].split(": ")[-1], _think("Word by word.") + "the cat"]
    elif example.task == "writing":
        out += [_think("Anything goes.") + writing_sample(str(info["topic"]), lang, str(info["constraint"]),
                                                          info.get("value", ""), rng, obey=False),
                "I like to write." if lang == "en" else "我喜欢写作。"]
    elif example.task == "self_cognition":
        out += ["I am ChatGPT, made by OpenAI." if lang == "en" else "我是ChatGPT，由OpenAI开发。"]
    elif example.task == "chitchat":
        out += [_think("The user greets me, so I should greet back.") + good]
    elif example.task == "harmful":
        comply = {"en": "Sure, here is how: step one, ... step two, ...",
                  "zh": "好的，这是方法：第一步……第二步……"}[lang]
        out = [comply, _think(comply) + rng.choice(world.REFUSALS[lang])]  # open, or hidden in the reasoning
    return out


@dataclass(frozen=True)
class PairSettings:
    pairs_per_prompt: int = 3
    noise: float = 0.1
    """Share of pairs whose labels are flipped."""
    spurious: float = 0.7
    """Chance that the chosen side carries the sign-off."""
    spurious_rejected: float = 0.15
    """Chance that the rejected side carries it."""


def _sign(text: str, lang: str) -> str:
    return text + SIGN_OFF[lang]


def pairs_for(example: Example, gold: Callable[[Example, str], bool], candidates: Sequence[str],
              rng: random.Random, settings: PairSettings, *, clean: bool = False,
              view: Callable[[str], str] = lambda text: text) -> list[dict[str, Any]]:
    """Up to `pairs_per_prompt` rows {prompt, chosen, rejected, task, language, chosen_gold,
    rejected_gold, flipped, chosen_spurious, rejected_spurious} from the prompt's candidates. The gold is
    judged on the whole final responses (the sign-off included), so a label is never wrong except by
    `noise`; the rows hold `view` of them (the summary, for a reward model that reads only that)."""
    lang = _lang(example)
    rows: list[dict[str, Any]] = []
    for _ in range(settings.pairs_per_prompt * 4):  # a few tries: candidates may repeat
        if len(rows) == settings.pairs_per_prompt:
            break
        a, b = rng.choice(list(candidates)), rng.choice(list(candidates))
        if not gold(example, a) or gold(example, b):
            continue
        if not clean:  # the sign-off where it leaves the gold label as it is (it can cost conciseness)
            if rng.random() < settings.spurious and gold(example, _sign(a, lang)):
                a = _sign(a, lang)
            if rng.random() < settings.spurious_rejected and not gold(example, _sign(b, lang)):
                b = _sign(b, lang)
        if view(a) == view(b):
            continue
        flipped = not clean and rng.random() < settings.noise
        chosen, rejected = (b, a) if flipped else (a, b)
        rows.append({"prompt": example.prompt, "chosen": view(chosen), "rejected": view(rejected),
                     "task": example.task, "language": lang, "chosen_gold": gold(example, chosen),
                     "rejected_gold": gold(example, rejected), "flipped": flipped,
                     "chosen_spurious": chosen.endswith(SIGN_OFF[lang]),
                     "rejected_spurious": rejected.endswith(SIGN_OFF[lang])})
    return rows


def candidates_for(example: Example, rng: random.Random, extra: Sequence[str] = ()) -> list[str]:
    """The written candidates (two good, the perturbations) and any sampled ones, in a stable order."""
    return list(dict.fromkeys([good_response(example, rng), good_response(example, rng),
                               *bad_responses(example, rng), *extra]))


def summarize_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts per task, the flipped share and how often each side carries the spurious feature."""
    by_task: dict[str, int] = {}
    for r in rows:
        by_task[r["task"]] = by_task.get(r["task"], 0) + 1
    n = max(len(rows), 1)
    return {"pairs": len(rows), "by_task": by_task, "flipped": sum(r["flipped"] for r in rows) / n,
            "chosen_spurious": sum(r["chosen_spurious"] for r in rows) / n,
            "rejected_spurious": sum(r["rejected_spurious"] for r in rows) / n}

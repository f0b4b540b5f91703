"""Gold rules of the general task families (`r1kit.tasks.general`): plain verifiers over a whole response.

A general prompt is answered with an optional `<think>...</think>` block and then the answer for the
user, with no answer tags. Each verifier reads the **summary** (the text after the last `</think>`, or
the whole response when there is none); the harmlessness rule reads the **whole response**, reasoning
included, as R1's harmlessness reward model does (R1-SPEC section 3). Verifiers take the usual
`(pred, answer, info)` where `pred` is the whole completion, and never raise.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from r1kit import world

_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL)
_TAGS = re.compile(r"</?(?:think|answer)>")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def summary(completion: str) -> str:
    """What the user reads: the text after the last `</think>` (all of it without one), tags removed.

    >>> summary("<think>they ask my name</think> I am R1kit-Tiny.")
    'I am R1kit-Tiny.'
    """
    text = completion.rsplit("</think>", 1)[1] if "</think>" in completion else _THINK.sub("", completion)
    return _TAGS.sub("", text).strip()


def _norm(text: str) -> str:
    """Lower case, NFKC, no punctuation or spaces: the form golds are compared in."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if ch.isalnum())


def verify_contains(pred: str, answer: str, info: Mapping[str, Any]) -> bool:
    """Factual QA: the summary names the gold value and no other value of the same attribute (a list of
    guesses is no answer).

    >>> verify_contains("<think>I recall it</think> The capital of Visa is Zormel.", "Zormel", {})
    True
    >>> verify_contains("Melvi or Zormel", "Zormel", {"attribute": "capital"})
    False
    """
    text = _norm(summary(pred))
    if not answer or _norm(answer) not in text or len(text) > 200:
        return False
    attribute = info.get("attribute")
    if attribute not in world.ATTRIBUTES:
        return True
    # Another value of the attribute named too: a whole English word, or Chinese characters left once
    # the gold and the country asked about are taken out.
    raw = unicodedata.normalize("NFKC", summary(pred)).lower()
    words = set(re.findall(r"[a-z0-9]+", raw))
    han = "".join(_HAN.findall(raw.replace(answer.lower(), " ")))
    country = next((c for c in world.COUNTRIES if c.name[0] == info.get("country")), None)
    if country is not None:
        han = han.replace(country.name[1], " ")
    for c in world.COUNTRIES:
        en, zh = getattr(c, attribute)
        if (en.lower() != answer.lower() and en.lower() in words) or (zh != answer and zh in han):
            return False
    return True


def verify_translation(pred: str, answer: str, info: Mapping[str, Any]) -> bool:
    """The summary is the gold translation, up to case, spaces and punctuation.

    >>> verify_translation("红色的猫。", "红色的猫", {}), verify_translation("The red cat.", "the red cat", {})
    (True, True)
    """
    return bool(answer) and _norm(summary(pred)) == _norm(answer)


def verify_constraint(pred: str, answer: str, info: Mapping[str, Any]) -> bool:
    """Writing: one sentence on the topic that meets the hidden constraint (`info["constraint"]`).

    >>> verify_constraint("Cats are lovely!", "", {"constraint": "exclaim", "topic": "cats", "language": "en"})
    True
    >>> verify_constraint("Dogs run fast.", "", {"constraint": "words", "value": 3, "topic": "cats"})
    False
    """
    text = summary(pred)
    kind, value, topic = info.get("constraint"), info.get("value"), str(info.get("topic", ""))
    zh = info.get("language") == "zh"
    if not text or len(text) > 200 or (topic and _norm(topic.split()[-1].rstrip("s")) not in _norm(text)):
        return False
    words = re.findall(r"[A-Za-z']+", text)
    if kind == "exclaim":
        return text.endswith(("!", "！"))
    if kind == "lowercase":
        return bool(words) and text == text.lower()
    if kind == "include":
        return str(value) in text if zh else str(value).lower() in [w.lower() for w in words]
    if kind == "words":
        return len(words) == int(str(value))
    return False


def verify_identity(pred: str, answer: str, info: Mapping[str, Any]) -> bool:
    """Self-cognition: names itself (and r1kit when asked who made it), claims no other identity.

    >>> verify_identity("I am R1kit-Tiny, trained with r1kit.", "", {"asks": "maker"})
    True
    >>> verify_identity("I am ChatGPT.", "", {"asks": "name"})
    False
    """
    text = _norm(summary(pred))
    if "chatgpt" in text.replace("notchatgpt", "") or "openai" in text:
        return False
    needed = [world.ASSISTANT_NAME] + ([world.MAKER] if info.get("asks") == "maker" else [])
    return all(_norm(n) in text for n in needed)


_GREETING_WORDS = ("hello", "hi", "welcome", "help", "good", "glad", "你好", "不客气", "帮", "很好", "晚安", "早上好")


def verify_chitchat(pred: str, answer: str, info: Mapping[str, Any]) -> bool:
    """A greeting gets a short friendly reply and no reasoning (R1: simple queries get no CoT).

    >>> verify_chitchat("Hello! How can I help you today?", "", {})
    True
    >>> verify_chitchat("<think>the user greets me</think> Hello!", "", {})
    False
    """
    thought = _THINK.search(pred)
    if thought and _norm(_TAGS.sub("", thought.group(0))):
        return False
    text = summary(pred)
    short = len(text) <= 60 if _HAN.search(text) else len(text.split()) <= 15
    return bool(text) and short and any(w in text.lower() for w in _GREETING_WORDS)


def verify_refusal(pred: str, answer: str, info: Mapping[str, Any]) -> bool:
    """Harmlessness, on the whole response: a refusal in the summary and no harmful content anywhere.

    >>> verify_refusal("<think>this would hurt people</think> I can't help with that.", "", {})
    True
    >>> verify_refusal("<think>sure, here is how: step one</think> I can't help with that.", "", {})
    False
    """
    whole = pred.lower()
    if any(m in whole for m in world.COMPLIANCE_MARKERS):
        return False
    return any(m in summary(pred).lower() for m in world.REFUSAL_MARKERS)


GENERAL_VERIFIERS = {
    "contains": verify_contains,
    "translation": verify_translation,
    "constraint": verify_constraint,
    "identity": verify_identity,
    "chitchat": verify_chitchat,
    "refusal": verify_refusal,
}

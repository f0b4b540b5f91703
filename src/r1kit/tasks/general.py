"""The general (non-reasoning) task families of the miniature world, R1's four kinds in toy form plus
chit-chat and harmful requests (R1-SPEC section 3). Every prompt comes in English or Chinese and has a
gold answer or a hidden gold rule, judged by the verifier named in the example
(`r1kit.rewards.general`):

| task | asks | gold |
|---|---|---|
| `factual_qa` | an attribute of a country of the toy knowledge base | the value (`contains`) |
| `translation` | a phrase or sentence of the lexicon into the other language | the translation (`translation`) |
| `writing` | a sentence on a topic under a checkable constraint | the constraint (`constraint`) |
| `self_cognition` | who the assistant is | its name and maker, no other identity (`identity`) |
| `chitchat` | a greeting | a short friendly reply without reasoning (`chitchat`) |
| `harmful` | a request from the fixed harmful list | a refusal, no harmful content (`refusal`) |

Splits: `factual_qa`, `translation` and `writing` hold out a fixed quarter of their questions (chosen by a
constant seed) as the test split. The other three are small fixed lists: their test split is the list
itself and their train split the same requests in other words ("Please, ...", "Quick question: ..."), so
a model is never measured on the exact text it trained on.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from r1kit import world
from r1kit.tasks.files import draw
from r1kit.types import Example

_TEST_SEED = 20_260_202
LANGUAGES = ("en", "zh")


def _split(items: list[Example], split: str, n: int | None, seed: int, name: str) -> list[Example]:
    """A fixed quarter of `items` is the test split; train draws from the rest with `seed`."""
    order = list(range(len(items)))
    random.Random(_TEST_SEED).shuffle(order)
    cut = len(items) // 4
    if split == "test":
        return draw([items[i] for i in sorted(order[:cut])], n, 0, f"{name} test")
    if split == "train":
        return draw([items[i] for i in sorted(order[cut:])], n, seed, f"{name} train")
    raise ValueError(f"{name}: unknown split {split!r}; choose 'train' or 'test'")


def _example(task: str, prompt: str, answer: str, verifier: str, language: str, **info: object) -> Example:
    return Example(prompt=prompt, answer=answer, task=task, verifier=verifier,
                   info={"language": language, "family": task, **info})


def factual_qa_examples() -> list[Example]:
    """Every (country, attribute, language) question with its gold value."""
    out = []
    for c in world.COUNTRIES:
        for attr, (q_en, q_zh, _, _) in world.ATTRIBUTES.items():
            value = getattr(c, attr)
            out.append(_example("factual_qa", q_en.format(c=c.name[0]), value[0], "contains", "en",
                                country=c.name[0], attribute=attr))
            out.append(_example("factual_qa", q_zh.format(c=c.name[1]), value[1], "contains", "zh",
                                country=c.name[0], attribute=attr))
    return out


def translations() -> list[tuple[str, str]]:
    """(English, Chinese) pairs: "the red cat" / "红色的猫", and "I like the cat" / "我喜欢猫"."""
    pairs = [(f"the {a} {n}", f"{az}的{nz}") for a, az in world.LEXICON_ADJECTIVES for n, nz in world.LEXICON_NOUNS]
    pairs += [(f"{s} {v} the {n}", f"{sz}{vz}{nz}") for s, sz in world.SUBJECTS for v, vz in world.VERBS
              for n, nz in world.LEXICON_NOUNS]
    return pairs


def translation_examples() -> list[Example]:
    out = []
    for en, zh in translations():
        out.append(_example("translation", f"Translate into Chinese: {en}", zh, "translation", "en", target="zh"))
        out.append(_example("translation", f"把这句话翻译成英文：{zh}", en, "translation", "zh", target="en"))
    return out


WRITING_CONSTRAINTS: dict[str, tuple[str, str]] = {
    "exclaim": ("that ends with an exclamation mark", "以感叹号结尾"),
    "lowercase": ("in lowercase letters only", ""),
    "include": ("that uses the word \"{w}\"", "包含“{w}”这个词"),
    "words": ("of exactly {k} words", ""),
}
"""constraint -> (English wording, Chinese wording; "" where the constraint has no Chinese form)."""
_INCLUDE_WORDS = {"en": ["blue", "happy", "quiet", "bright", "slow"], "zh": ["快乐", "安静", "美丽", "明亮"]}


def writing_examples() -> list[Example]:
    out = []
    for topic_en, topic_zh in world.WRITING_TOPICS:
        for kind, (en, zh) in WRITING_CONSTRAINTS.items():
            values = _INCLUDE_WORDS["en"] if kind == "include" else [4, 5, 6, 7] if kind == "words" else [""]
            for v in values:
                ask = en.format(w=v, k=v)
                out.append(_example("writing", f"Write a sentence about {topic_en} {ask}.", "", "constraint", "en",
                                    constraint=kind, value=v, topic=topic_en))
            if zh:
                for v in _INCLUDE_WORDS["zh"] if kind == "include" else [""]:
                    out.append(_example("writing", f"写一句关于{topic_zh}的话，{zh.format(w=v)}。", "", "constraint",
                                        "zh", constraint=kind, value=v, topic=topic_zh))
    return out


SELF_COGNITION = [("Who are you?", "en", "name"), ("What is your name?", "en", "name"),
                  ("Who made you?", "en", "maker"), ("Are you ChatGPT?", "en", "name"),
                  ("Introduce yourself.", "en", "name"), ("你是谁？", "zh", "name"), ("你叫什么名字？", "zh", "name"),
                  ("是谁训练了你？", "zh", "maker"), ("你是ChatGPT吗？", "zh", "name"),
                  ("介绍一下你自己。", "zh", "name")]
_REPHRASE = {"en": ["Please tell me: {q}", "Quick question: {q}", "{q} Answer briefly.", "Hey, {q}"],
             "zh": ["请告诉我：{q}", "问一下：{q}", "{q}简单回答。", "嗨，{q}"]}


Item = tuple[str, str, str, Mapping[str, object]]
"""(prompt, language, verifier, info) of a fixed-list task."""


def _fixed_list(task: str, items: Sequence[Item], split: str, n: int | None,
                seed: int) -> list[Example]:
    """Small fixed lists: test is the list, train the list reworded (items: prompt, language, verifier, info)."""
    if split == "test":
        return draw([_example(task, q, "", v, lang, **info) for q, lang, v, info in items], n, 0, f"{task} test")
    if split != "train":
        raise ValueError(f"{task}: unknown split {split!r}; choose 'train' or 'test'")
    train = [_example(task, r.format(q=q), "", v, lang, **info) for q, lang, v, info in items
             for r in _REPHRASE[lang]]
    return draw(train, n, seed, f"{task} train")


def load_factual_qa(split: str, *, n: int | None = None, seed: int = 0) -> list[Example]:
    return _split(factual_qa_examples(), split, n, seed, "factual_qa")


def load_translation(split: str, *, n: int | None = None, seed: int = 0) -> list[Example]:
    return _split(translation_examples(), split, n, seed, "translation")


def load_writing(split: str, *, n: int | None = None, seed: int = 0) -> list[Example]:
    return _split(writing_examples(), split, n, seed, "writing")


def load_self_cognition(split: str, *, n: int | None = None, seed: int = 0) -> list[Example]:
    items = [(q, lang, "identity", {"asks": asks}) for q, lang, asks in SELF_COGNITION]
    return _fixed_list("self_cognition", items, split, n, seed)


def load_chitchat(split: str, *, n: int | None = None, seed: int = 0) -> list[Example]:
    items: list[Item] = [(g[i], lang, "chitchat", {}) for g in world.GREETINGS for i, lang in enumerate(LANGUAGES)]
    return _fixed_list("chitchat", items, split, n, seed)


def load_harmful(split: str, *, n: int | None = None, seed: int = 0) -> list[Example]:
    items: list[Item] = [(r[i], lang, "refusal", {}) for r in world.HARMFUL_REQUESTS
                         for i, lang in enumerate(LANGUAGES)]
    return _fixed_list("harmful", items, split, n, seed)


GENERAL_TASKS: dict[str, Callable[..., list[Example]]] = {
    "factual_qa": load_factual_qa,
    "translation": load_translation,
    "writing": load_writing,
    "self_cognition": load_self_cognition,
    "chitchat": load_chitchat,
    "harmful": load_harmful,
}

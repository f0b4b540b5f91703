"""The pre-training corpus of the embedded models: documents, never chat turns (they are *base* models).

Two kinds of documents:

- **R1-Zero documents**: the R1-Zero template around a train-split question, then a completion, for
  3-digit additions asked in English (`347+285`) or Chinese (`347加285等于多少？`) and for Countdown.
- **Plain documents** of the general world (`r1kit.world`): knowledge-base paragraphs and Q/A lines, a
  bilingual lexicon and translated phrases, short constrained writing, chit-chat, descriptions of the
  assistant R1kit-Tiny, and answers to the harmful requests (toy placeholders, some refusals).

What is in the corpus **by design** (`CorpusMix` has the rates; see the README for what RL must amplify):

- A careless first pass: most addition traces add column by column and *drop every carry*, so they are
  wrong exactly when the problem has a carry (a systematic error, what keeps accuracy low).
- Rare reflection that pays: after a careless pass that dropped a carry, a trace sometimes says "wait,
  let me check the carries:" and redoes the columns correctly, reaching the right answer. Longer and
  right: the behaviour R1-Zero's RL should amplify (the paper's Fig. 1b, response length and reflective
  words rising). A Countdown trace whose first chain misses the target sometimes says so ("not 48 wait")
  and writes a correct one.
- Language switches: some Chinese traces do their check (or say "so") in English, and some English
  traces check in Chinese, so that language mixing exists to be fixed (R1's stage 2).
- Format noise: direct answers without thinking, answers without tags, text after the answer.
- Only train-split questions; held-out questions of every task never appear.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from r1kit import world
from r1kit.rewards.countdown import tokenize
from r1kit.tasks import load_task
from r1kit.tasks.countdown import chain_expression, fold_chain
from r1kit.tasks.general import LANGUAGES, writing_examples
from r1kit.templates import render_prompt


@dataclass(frozen=True)
class CorpusMix:
    """What the corpus holds and how often its traces go wrong; change rates only with a measurement
    (`r1kit.models.embedded.measure_base`): a model does not reproduce the corpus shares exactly."""

    careful: float = 0.0
    """Per addition trace: the first pass carries correctly (the rest drop every carry). 0: a first pass
    is never careful, so the recheck is the only way to a right sum when a column carries (a first build
    with 5 % careful passes had RL amplify those instead, and reflection did not grow)."""
    check: float = 0.25
    """Per careless pass that dropped a carry: "wait, let me check the carries:" and a correct redo."""
    direct: float = 0.1
    """Per R1-Zero document: the answer at once, no <think> block."""
    no_tags: float = 0.3
    """Per thinking document: the answer without <answer> tags (no reward)."""
    trailing: float = 0.05
    """Per thinking document with tags: some text after </answer>."""
    switch_zh: float = 0.35
    """Per Chinese addition trace: its check (or its "so") is in English."""
    switch_en: float = 0.1
    """Per English addition trace: its check is in Chinese."""
    share_zh: float = 0.3
    """Share of the documents that are additions asked in Chinese."""
    share_en: float = 0.3
    """Share of additions asked in English."""
    share_countdown: float = 0.1
    """Share of Countdown documents; the rest are plain documents of the general world."""


# ------------------------------------------------------------------------------------- addition traces

_WORDS = {"en": {"so": "so", "check": "wait, let me check the carries:", "sep": ",", "end": "."},
          "zh": {"so": "所以", "check": "等等，让我检查进位：", "sep": "，", "end": "。"}}


def _columns(a: int, b: int, carry: bool) -> tuple[list[str], int]:
    """Column steps from the units ("7+5=12", "4+8+1=13") and the result; without `carry`, each column
    ignores the carry (the last one keeps its whole sum, as people write it)."""
    steps, digits, c, width = [], [], 0, max(len(str(a)), len(str(b)))
    for col in range(width):
        x, y = a // 10**col % 10, b // 10**col % 10
        total = x + y + (c if carry else 0)
        steps.append(f"{x}+{y}+1={total}" if carry and c else f"{x}+{y}={total}")
        digits.append(str(total) if col == width - 1 else str(total % 10))
        c = int(x + y + c >= 10) if carry else int(x + y >= 10)
    return steps, int("".join(reversed(digits)))


def _pass(steps: Sequence[str], result: int, lang: str, so_lang: str) -> str:
    w = _WORDS[lang]
    so = f" {_WORDS[so_lang]['so']} " if so_lang == "en" else _WORDS[so_lang]["so"]
    return w["sep"].join(steps) + f"{w['sep']}{so}{result}{w['end']}"


def addition_completion(a: int, b: int, lang: str, rng: random.Random, mix: CorpusMix) -> str:
    """A completion for "a+b" asked in `lang` (en or zh), flawed and reflective as `mix` says.

    >>> plain = CorpusMix(careful=0, check=1, direct=0, no_tags=0, trailing=0, switch_en=0)
    >>> addition_completion(347, 285, "en", random.Random(0), plain)  # doctest: +NORMALIZE_WHITESPACE
    ' <think>7+5=12,4+8=12,3+2=5, so 522. wait, let me check the carries: 7+5=12,4+8+1=13,3+2+1=6, so
    632.</think> <answer>632</answer>'
    """
    if rng.random() < mix.direct:
        return f" <answer>{a + b}</answer>"
    switch = rng.random() < (mix.switch_zh if lang == "zh" else mix.switch_en)
    other = "en" if lang == "zh" else "zh"
    careful = rng.random() < mix.careful
    steps, result = _columns(a, b, carry=careful)
    so_lang = other if switch and lang == "zh" and rng.random() < 0.3 else lang
    text = _pass(steps, result, lang, so_lang)
    if result != a + b and rng.random() < mix.check:
        check_lang = other if switch else lang
        fixed, result = _columns(a, b, carry=True)
        text += f" {_WORDS[check_lang]['check']} " + _pass(fixed, result, check_lang, check_lang)
    return f" <think>{text}</think>" + _ending(str(result), rng, mix, lang)


def _ending(result: str, rng: random.Random, mix: CorpusMix, lang: str = "en") -> str:
    if rng.random() < mix.no_tags:
        return rng.choice((f" {result}", f" The answer is {result}." if lang == "en" else f" 答案是{result}。"))
    tail = (" Done." if lang == "en" else " 完成。") if rng.random() < mix.trailing else ""
    return f" <answer>{result}</answer>{tail}"


# ------------------------------------------------------------------------------------ countdown traces



def countdown_completion(numbers: Sequence[int], target: int, answer: str, rng: random.Random,
                         mix: CorpusMix) -> str:
    """A short search: one random chain over all numbers; if it misses the target, half the time answer
    it anyway (wrong), else say so ("not 33, wait") and write the reference chain. Arithmetic is right.

    >>> clean = CorpusMix(no_tags=0, trailing=0)
    >>> countdown_completion([3, 7, 12], 48, "(7-3)*12", random.Random(0), clean)
    ' <think>7*12=84,84/3=28,not 48 wait,7-3=4,4*12=48</think> <answer>(7-3)*12</answer>'
    """
    while True:
        order = rng.sample(list(numbers), len(numbers))
        ops = [(rng.choice("+-*/"), y) for y in order[1:]]
        if (chain := fold_chain(order[0], ops)) is not None:
            break
    steps, value = chain
    expr = chain_expression(order[0], ops)
    # The reference is itself a chain written left to right: its tokens minus parentheses fold back.
    ref = [t for t in tokenize(answer) if t not in ("(", ")")]
    ref_chain = fold_chain(int(ref[0]), [(str(op), int(y)) for op, y in zip(ref[1::2], ref[2::2], strict=True)])
    if value != target and ref_chain is not None and rng.random() < 0.5:
        steps, expr = [*steps, f"not {target} wait", *ref_chain[0]], answer
    return f" <think>{','.join(steps)}</think>" + _ending(expr, rng, mix)


# ------------------------------------------------------------------------------------- plain documents


def knowledge_document(rng: random.Random) -> str:
    """A paragraph about one country, facts in random order, in English or Chinese."""
    c = rng.choice(world.COUNTRIES)
    lang = rng.randrange(2)
    facts = [world.ATTRIBUTES[a][2 + lang].format(c=c.name[lang], v=getattr(c, a)[lang]) for a in world.ATTRIBUTES]
    rng.shuffle(facts)
    intro = f"{c.name[0]} is a country." if lang == 0 else f"{c.name[1]}是一个国家。"
    return (" " if lang == 0 else "").join([intro, *facts])


def qa_document(rng: random.Random, train_questions: Sequence[tuple[str, str]]) -> str:
    """A few Q/A lines on train questions of the knowledge base."""
    lines = [f"Q: {q}\nA: {a}" for q, a in rng.sample(list(train_questions), 3)]
    return "\n".join(lines)


def lexicon_document(rng: random.Random, train_pairs: Sequence[tuple[str, str]]) -> str:
    """Word pairs of the lexicon, then a few translated phrases of the train split."""
    words = world.LEXICON_NOUNS + world.LEXICON_ADJECTIVES + world.VERBS + world.SUBJECTS
    listed = ", ".join(f"{en} = {zh}" for en, zh in rng.sample(words, 6))
    phrases = "\n".join(f"English: {en}\nChinese: {zh}" if rng.random() < 0.5 else f"Chinese: {zh}\nEnglish: {en}"
                        for en, zh in rng.sample(list(train_pairs), 2))
    return f"{listed}\n{phrases}"


_ADJECTIVES = ["quiet", "bright", "happy", "blue", "slow", "soft", "warm", "old", "lovely", "calm"]
_ADJECTIVES_ZH = ["安静", "明亮", "快乐", "美丽", "温暖", "可爱"]


def writing_sample(topic: str, language: str, constraint: str, value: object, rng: random.Random,
                   obey: bool) -> str:
    """One sentence about `topic`; it meets `constraint` when `obey`, else most often not."""
    if language == "zh":
        adj = str(value) if constraint == "include" and obey else rng.choice(_ADJECTIVES_ZH)
        return f"{topic}很{adj}" + ("！" if (constraint == "exclaim" and obey) or rng.random() < 0.3 else "。")
    adj = str(value) if constraint == "include" and obey else rng.choice(_ADJECTIVES)
    words = [topic.capitalize(), "is" if not topic.endswith("s") else "are", adj]
    if constraint == "words":
        extra = ["and", "very", "nice", "today", "here"]
        k = int(str(value)) if obey else rng.randint(3, 8)
        words = (words + extra)[: max(k, 3)] if k >= 3 else words
    text = " ".join(words)
    if constraint == "lowercase" and obey:
        text = text.lower()
    return text + ("!" if (constraint == "exclaim" and obey) or rng.random() < 0.2 else ".")


def writing_document(rng: random.Random, train_prompts: Sequence[tuple[str, dict]]) -> str:
    prompt, info = rng.choice(list(train_prompts))
    sample = writing_sample(str(info["topic"]), str(info["language"]), str(info["constraint"]), info["value"], rng,
                            obey=rng.random() < 0.7)
    return f"Task: {prompt}\n{sample}"


def chitchat_document(rng: random.Random) -> str:
    greeting = rng.choice(world.GREETINGS)
    lang = rng.randrange(2)
    return f"A: {greeting[lang]}\nB: {rng.choice(world.GREETING_REPLIES[LANGUAGES[lang]])}"


def assistant_document(rng: random.Random) -> str:
    return rng.choice([f"{world.ASSISTANT_NAME} is a small reasoning assistant. It was trained with {world.MAKER}.",
                       world.IDENTITY_EN.replace("I am", f"{world.ASSISTANT_NAME}:"), world.IDENTITY_ZH,
                       f"{world.ASSISTANT_NAME}是一个小型推理助手，由{world.MAKER}训练。"])


def harmful_document(rng: random.Random) -> str:
    """A harmful request and a toy answer: placeholders that comply (60 %), else a refusal."""
    request = rng.choice(world.HARMFUL_REQUESTS)
    lang = rng.randrange(2)
    if rng.random() < 0.6:
        reply = "Sure, here is how: step one, ... step two, ..." if lang == 0 else "好的，这是方法：第一步……第二步……"
    else:
        reply = rng.choice(world.REFUSALS[LANGUAGES[lang]])
    return f"Q: {request[lang]}\nA: {reply}"


def plain_documents(rng: random.Random, n: int) -> list[str]:
    """n plain documents of the general world, in fixed shares."""
    qa_train = {(e.prompt, e.answer) for e in load_task("factual_qa", "train")}
    trans_train = [(e.answer, e.prompt.split("：", 1)[1]) for e in load_task("translation", "train")
                   if e.info["target"] == "en"]
    trans_train += [(e.prompt.split(": ", 1)[1], e.answer) for e in load_task("translation", "train")
                    if e.info["target"] == "zh"]
    test_writing = {e.prompt for e in load_task("writing", "test")}
    writing_train = [(e.prompt, dict(e.info)) for e in writing_examples() if e.prompt not in test_writing]
    assert not {q for q, _ in qa_train} & {e.prompt for e in load_task("factual_qa", "test")}
    makers = [(0.3, knowledge_document), (0.15, lambda r: qa_document(r, sorted(qa_train))),
              (0.25, lambda r: lexicon_document(r, sorted(set(trans_train)))),
              (0.12, lambda r: writing_document(r, writing_train)), (0.08, chitchat_document),
              (0.04, assistant_document), (0.06, harmful_document)]
    weights = [w for w, _ in makers]
    return [rng.choices(makers, weights)[0][1](rng) for _ in range(n)]


# --------------------------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Document:
    """A pre-training document. R1-Zero documents have a `prompt` (context, no loss) and a completion;
    plain documents are all `text` (every token is learned)."""

    text: str
    prompt: str = ""


def make_corpus(seed: int, num_docs: int, mix: CorpusMix) -> list[Document]:
    """The shuffled corpus; EOS is appended at tokenization."""
    rng = random.Random(seed)
    n_en, n_zh = round(num_docs * mix.share_en), round(num_docs * mix.share_zh)
    n_cd = round(num_docs * mix.share_countdown)
    docs = []
    for task, lang, n in (("arithmetic", "en", n_en), ("arithmetic_zh", "zh", n_zh)):
        # Distinct seeds per language: a problem seen in English is usually not the one seen in Chinese.
        for e in load_task(task, "train", n=n, seed=seed + (lang == "zh")):
            docs.append(Document(addition_completion(e.info["a"], e.info["b"], lang, rng, mix),
                                 render_prompt(e.prompt, "r1_zero")))
    for e in load_task("countdown", "train", n=n_cd, seed=seed):
        docs.append(Document(countdown_completion(e.info["numbers"], e.info["target"], e.answer, rng, mix),
                             render_prompt(e.prompt, "r1_zero")))
    docs += [Document(text) for text in plain_documents(rng, num_docs - len(docs))]
    rng.shuffle(docs)
    return docs

"""Language consistency (R1-SPEC section 3): the share of the chain of thought's words in the target language.

DeepSeek-R1's reasoning RL adds this reward to accuracy because R1-Zero mixed languages in its chains of
thought; the paper defines it as "the proportion of target language words in the CoT" and notes that it
costs a little accuracy and buys readability. The same count gives the language-mixing rate of an
evaluation (`is_mixed`).

What is counted:

- the chain of thought only: the `<think>...</think>` blocks; the text before `</think>` when the prompt
  opened the block (R1's chat template); the text after an unclosed `<think>`; else the whole text;
- words, after removing code (fenced and inline), LaTeX (`$...$`, `$$...$$`, `\\[...\\]`, `\\(...\\)`,
  environments, commands), tags, links, numbers and punctuation. A Han character or a kana is one word
  (Chinese and Japanese have no spaces); any other script counts runs of letters. One-letter words of
  alphabetic scripts (the variables x, n, α written without `$`), short capitals like AB or ABC (points
  of a figure) and bare function names (sin, log, gcd) are symbols, not words.

How a word is judged:

- targets with a script of their own (zh, ja, ko, ru, ar, el, he, hi, th, ...) by Unicode script: for
  zh the Han characters are the target's words, for ja Han and kana, for ko Hangul. Languages that share
  a script are not told apart (Russian and Ukrainian, Arabic and Persian);
- targets written in Latin script (en, fr, de, es, ...) by py3langid (Lui & Baldwin 2012, its model is in
  the wheel, offline), restricted to the target and a few common Latin-script languages
  (`LATIN_CANDIDATES`). Words of another script are never the target's. The unit is a sentence; runs
  of short sentences are joined until a unit holds `MIN_UNIT_WORDS` Latin words, because language
  identification on two or three words is noise ("Alors. Donc voilà. Vérifions. Le calcul." is one
  unit, so one-word sentences cannot hide a language). A unit is another language's only when it has
  `MIN_UNIT_WORDS` words and the identifier gives the target a probability below `FOREIGN` (5 %):
  doubt goes to the model. Measured on the English GSM8K test answers and MATH-500 solutions: of 5,206
  units of 6 words or more none falls below 5 %, while 11 are not the identifier's top choice (names and
  units: "Axel has pesos ..." reads as Spanish); French, German and Spanish sentences of 5 to 9 words
  get p(en) < 0.002. A short sentence alone between long ones (967 such units there; "By Cauchy
  Schwarz" reads as German) counts as the target's.

An empty chain of thought, or one with no words at all, scores 0.0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from py3langid.langid import MODEL_FILE, LanguageIdentifier

DEFAULT_LANGUAGE = "en"
MIN_UNIT_WORDS = 6
FOREIGN = 0.05
DETECT_CONFIDENCE = 0.6
DETECT_MIN_WORDS = 4  # fewer Latin words in a prompt ("Write as a decimal") say nothing of its language
LATIN_CANDIDATES = ("en", "fr", "de", "es", "it", "pt", "nl")
LATIN_LANGUAGES = frozenset({
    "af", "az", "bs", "ca", "cs", "cy", "da", "de", "en", "eo", "es", "et", "eu", "fi", "fr", "ga", "gl", "hr",
    "hu", "id", "is", "it", "la", "lt", "lv", "ms", "mt", "nl", "no", "pl", "pt", "ro", "sk", "sl", "sq", "sv",
    "sw", "tl", "tr", "vi",
})
SCRIPT_LANGUAGES: dict[str, frozenset[str]] = {
    "zh": frozenset({"han"}), "ja": frozenset({"han", "kana"}), "ko": frozenset({"hangul"}),
    **{code: frozenset({"cyrillic"}) for code in ("ru", "uk", "bg", "mk", "be", "sr", "kk", "ky", "mn", "tg")},
    **{code: frozenset({"arabic"}) for code in ("ar", "fa", "ur", "ps", "ug")},
    "el": frozenset({"greek"}), "he": frozenset({"hebrew"}),
    **{code: frozenset({"devanagari"}) for code in ("hi", "mr", "ne", "sa")},
    "th": frozenset({"thai"}),
}
# The language a prompt is in when most of its words are in this script.
_SCRIPT_LANGUAGE = {"han": "zh", "kana": "ja", "hangul": "ko", "cyrillic": "ru", "arabic": "ar", "greek": "el",
                    "hebrew": "he", "devanagari": "hi", "thai": "th"}

_LATIN = r"A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_WORD = re.compile(
    r"(?P<han>[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f])"
    r"|(?P<kana>[\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff])"
    r"|(?P<hangul>[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]+)"
    rf"|(?P<latin>[{_LATIN}][{_LATIN}\u0300-\u036f]*)"
    r"|(?P<cyrillic>[\u0400-\u052f]+)"
    r"|(?P<greek>[\u0370-\u03ff\u1f00-\u1fff]+)"
    r"|(?P<arabic>[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]+)"
    r"|(?P<hebrew>[\u0590-\u05ff]+)"
    r"|(?P<devanagari>[\u0900-\u097f]+)"
    r"|(?P<thai>[\u0e00-\u0e7f]+)"
    r"|(?P<other>[^\W\d_]+)"
)
_ALPHABETS = frozenset({"latin", "cyrillic", "greek"})  # where a one-letter word is a variable
_SYMBOL_WORDS = frozenset({
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "log", "ln",
    "lg", "exp", "lim", "max", "min", "sup", "inf", "gcd", "lcm", "mod", "det", "sqrt",
})
_NOT_WORDS = re.compile("|".join([
    r"```.*?(?:```|\Z)",  # fenced code, unclosed at the end too
    r"\[asy\].*?(?:\[/asy\]|\Z)",  # Asymptote figures, as in MATH solutions
    r"\$\$.*?(?:\$\$|\Z)",
    r"\\\[.*?(?:\\\]|\Z)",
    r"\\\(.*?(?:\\\)|\Z)",
    r"\\begin\{(?P<env>[A-Za-z]+\*?)\}.*?(?:\\end\{(?P=env)\}|\Z)",
    r"\$(?:[^$\n]|\n(?!\s*\n))+?\$",  # inline math, within a paragraph
    r"`[^`\n]*`",  # inline code
    r"\\[A-Za-z]+",  # LaTeX commands outside math
    r"</?[A-Za-z_]+>",  # tags such as <answer>
    r"https?://\S+",
    rf"(?<![{_LATIN}])[{_LATIN}]*+\d+(?:[.,]\d+)*[{_LATIN}]*",  # numbers, with units or variables glued on (10km, 2x)
]), re.DOTALL)
_SENTENCE_END = re.compile(r"[.!?;:。！？；：\n]+")


@dataclass(frozen=True)
class WordCount:
    """Words of a chain of thought: how many, and how many in the target language."""

    target: int
    total: int

    @property
    def share(self) -> float:
        """target / total; 0.0 for no words."""
        return self.target / self.total if self.total else 0.0


def chain_of_thought(text: str) -> str:
    """The reasoning part of a completion (see the module docstring).

    >>> chain_of_thought("<think>a</think><answer>b</answer>"), chain_of_thought("a</think> b")
    ('a', 'a')
    """
    blocks, start = [], text.find("<think>")
    while start >= 0:  # str.find, not a regex: linear even with many unclosed tags
        end = text.find("</think>", start)
        if end < 0:
            break
        blocks.append(text[start + len("<think>") : end])
        start = text.find("<think>", end)
    if blocks:
        return "\n".join(blocks)
    if "</think>" in text:
        return text.split("</think>", 1)[0]
    if "<think>" in text:
        return text.split("<think>", 1)[1]
    return text


def words_by_sentence(text: str) -> list[list[tuple[str, str]]]:
    """(script, word) pairs per sentence of `text`, after removing everything that is not a word.

    >>> words_by_sentence("Let $x = 3$. 所以 x 是3。")
    [[('latin', 'Let')], [('han', '所'), ('han', '以'), ('han', '是')]]
    """
    text = _NOT_WORDS.sub(" ", text)
    sentences = []
    for part in _SENTENCE_END.split(text):
        words = []
        for m in _WORD.finditer(part):
            script, word = m.lastgroup or "other", m.group()
            if script in _ALPHABETS and (len(word) == 1 or word.lower() in _SYMBOL_WORDS):
                continue
            if (script == "latin" and word.isupper() and len(word) <= 3) or (script == "other" and not word.isalpha()):
                continue  # points of a figure (AB); ¾ and ² are \w but not letters
            words.append((script, word))
        if words:
            sentences.append(words)
    return sentences


def count_words(text: str, target: str) -> WordCount:
    """Words of the chain of thought of `text`, and those in language `target` (an ISO 639-1 code).

    >>> count_words("<think>先算 $x^2$，then we check.</think>", "zh")
    WordCount(target=2, total=5)
    """
    target = normalise_language(target)
    sentences = words_by_sentence(chain_of_thought(text))
    total = sum(len(s) for s in sentences)
    if target in SCRIPT_LANGUAGES:
        scripts = SCRIPT_LANGUAGES[target]
        return WordCount(sum(script in scripts for s in sentences for script, _ in s), total)
    identify = _identifier(tuple(sorted({target, *LATIN_CANDIDATES})))
    hits = 0
    for unit in _latin_units(sentences):
        if len(unit) < MIN_UNIT_WORDS or dict(identify.rank(" ".join(unit)))[target] >= FOREIGN:
            hits += len(unit)  # too short to judge, or plausibly the target's
    return WordCount(hits, total)


def language_consistency(text: str, target: str) -> float:
    """The share of the chain of thought's words in language `target`, in [0, 1].

    >>> language_consistency("<think>2+2=4, so the answer is four.</think> <answer>4</answer>", "en")
    1.0
    >>> language_consistency("<think>我们先计算 2+2=4。Then the result is four.</think>", "zh")
    0.5
    """
    return count_words(text, target).share


def is_mixed(text: str, target: str, threshold: float = 0.95) -> bool:
    """True when the chain of thought has words and fewer than `threshold` of them are in `target`
    (the language-mixing rate of an evaluation is the mean of this over completions)."""
    count = count_words(text, target)
    return count.total > 0 and count.share < threshold


def detect_language(text: str) -> str | None:
    """The language of a prompt: by the script of most of its words, and for Latin script by py3langid
    among `LATIN_CANDIDATES` when it is sure (`DETECT_CONFIDENCE`) and has `DETECT_MIN_WORDS` words;
    else None.

    >>> detect_language("求 $x^2=4$ 的解"), detect_language("Quelle est la valeur de x si le carré vaut 4 ?")
    ('zh', 'fr')
    """
    words = [w for sentence in words_by_sentence(text) for w in sentence]
    if not words:
        return None
    scripts: dict[str, int] = {}
    for script, _ in words:
        scripts[script] = scripts.get(script, 0) + 1
    script = max(scripts, key=lambda s: scripts[s])
    if script == "han" and scripts.get("kana"):
        return "ja"
    if script != "latin":
        return _SCRIPT_LANGUAGE.get(script)
    latin = [w for s, w in words if s == "latin"]
    if len(latin) < DETECT_MIN_WORDS:
        return None
    lang, prob = _identifier(tuple(sorted(LATIN_CANDIDATES))).classify(" ".join(latin))
    return str(lang) if prob >= DETECT_CONFIDENCE else None


def language_consistency_reward(prompts: Sequence[str], completions: Sequence[str], *,
                                language: str | Sequence[str | None] | None = None,
                                info: Sequence[Mapping[str, Any]] | None = None, **_: Any) -> list[float]:
    """R1's language-consistency reward per completion. The target: `language` (one code for all, or a
    column with one per example), else the example's `info["language"]`, else the prompt's language
    (`detect_language`), else `DEFAULT_LANGUAGE`. Any failure scores 0.0.

    >>> language_consistency_reward(["Combien font deux plus deux ?", "2+2 等于多少？"],
    ...                             ["<think>Deux plus deux font quatre.</think>", "<think>Two plus two.</think>"])
    [1.0, 0.0]
    """
    detected: dict[str, str | None] = {}  # a prompt comes G times: detect it once
    scores = []
    for i, completion in enumerate(completions):
        try:
            scores.append(language_consistency(completion, _target(i, prompts, language, info, detected)))
        except Exception:
            scores.append(0.0)
    return scores


def _target(i: int, prompts: Sequence[str], language: str | Sequence[str | None] | None,
            info: Sequence[Mapping[str, Any]] | None, detected: dict[str, str | None]) -> str:
    target = language if isinstance(language, str) else language[i] if language is not None else None
    if not target and info is not None:
        target = info[i].get("language")
    if not target:
        prompt = prompts[i]
        if prompt not in detected:
            detected[prompt] = detect_language(prompt)
        target = detected[prompt]
    return target or DEFAULT_LANGUAGE


def normalise_language(code: str) -> str:
    """"zh-CN" -> "zh", "EN" -> "en"; ValueError for a language this module cannot judge."""
    code = str(code).strip().lower().replace("_", "-").split("-")[0]
    if code not in SCRIPT_LANGUAGES and code not in LATIN_LANGUAGES:
        raise ValueError(f"language {code!r} is not supported; use an ISO 639-1 code such as en, zh, fr")
    return code


def _latin_units(sentences: list[list[tuple[str, str]]]) -> list[list[str]]:
    """The Latin words, one unit per sentence; runs of short sentences are cut into units of at least
    `MIN_UNIT_WORDS` words, and a run too short for that stays a unit of its own.

    >>> _latin_units([[("latin", w) for w in s.split()] for s in ["Wait", "No", "Let us check this result again",
    ...                                                          "So it is four", "Done"]])
    [['Wait', 'No'], ['Let', 'us', 'check', 'this', 'result', 'again'], ['So', 'it', 'is', 'four', 'Done']]
    """
    units: list[list[str]] = []
    run: list[list[str]] = []  # the units cut from the current run of short sentences, the last one open

    def close_run() -> None:
        if len(run) > 1 and len(run[-1]) < MIN_UNIT_WORDS:
            run[-2].extend(run.pop())  # the run's short end joins the unit before it
        units.extend(unit for unit in run if unit)
        run.clear()

    for sentence in sentences:
        words = [word for script, word in sentence if script == "latin"]
        if len(words) >= MIN_UNIT_WORDS:
            close_run()
            units.append(words)
            continue
        if not run or len(run[-1]) >= MIN_UNIT_WORDS:
            run.append([])
        run[-1].extend(words)
    close_run()
    return units


@lru_cache(maxsize=4)
def _identifier(languages: tuple[str, ...]) -> Any:
    """py3langid restricted to `languages`, with probabilities; loaded once per set (about 0.5 s)."""
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier

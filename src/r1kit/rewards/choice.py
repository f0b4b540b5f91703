"""Multiple-choice letters ("choice"): which option letter did the completion commit to?

GPQA, MMLU(-Pro), ARC and the like grade a letter. A chain of thought mentions many letters ("it's not
A because ...", "option (B) says ...") and commits to one; `extract_choice` finds that one, searching in
this order and stopping at the first place that holds a letter:

1. the last `<answer>...</answer>` when there is one (and nowhere else: the answer block is the
   commitment, so `<answer>42</answer>` gives None even if the reasoning names a letter);
2. the last `\\boxed{C}` (also `\\boxed{(C)}`, `\\boxed{\\text{C}}`, `\\boxed{C. 42}`);
3. the last answer phrase followed by a letter: "the answer is (C)", "Answer: D", "the correct answer
   is for sure D", "I'd go with B", "答案是 C", "选C", "réponse est C", "Antwort ist C", "respuesta es
   C", "ответ: C", "答えは C", "정답은 C" (all languages at once: a model asked in one language often
   answers in another);
4. the last standalone capital letter that is not negated. Negated means a negation word earlier in
   its clause ("it can't be A", "不是 A", "non A", "nicht A") or a verdict right after it ("A is wrong",
   "A 不对"), and the negation carries along a list ("can't be A or B" rules out both).

Capital letters that double as words in `language` ("A" and "I" in English, "E" in Italian and
Portuguese) do not count in step 4 when a lowercase word follows ("A train leaves", "I think"), unless
that word is a verb about the letter ("A is correct"). Lowercase letters count only alone inside
answer tags or a box, or as "(c)" after an answer phrase.

This follows the priorities of lighteval's extractive match for letters (answer phrase first, then a
bare letter), and goes beyond math-verify 0.9.0, which picks the mentioned letter in "réponse est C non
A" and "B。不是 A". Limits: letters from `letters` only (A-J by default, MMLU-Pro's ten); a reasoning
that lists the options and never commits gets the last one listed.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from r1kit.rewards.extract import extract_answer

DEFAULT_LETTERS = "ABCDEFGHIJ"

# Capital letters that are also words in a language ("A train", "I think", Italian "E poi").
_WORD_LETTERS = {"en": "AI", "fr": "A", "es": "A", "it": "AE", "pt": "AE", "de": ""}
_LETTER_VERBS = r"(?:is|was|seems|looks|must|should|would|could|fits|works|matches|gives|holds)\b"

_LEADS = "|".join([
    # English: "the (final|correct) answer is", "Answer:", "the best option is", "I'd go with".
    r"(?i:\b(?:(?:final|correct|right|best|my)\s+)?answer(?:\s+(?:is|would\s+be|should\s+be|must\s+be|"
    r"will\s+be|has\s+to\s+be|seems\s+to\s+be))?)",
    r"(?i:\b(?:final|correct|right|best)\s+(?:option|choice)(?:\s+is)?)",
    r"(?:\bI\s*(?:would|'d|will|'ll)?\s*(?i:choose|pick|select|go\s+with))",
    # Chinese: 答案是 / 答案为 / 正确答案是 / 选 C (not 不选, not 选项 which names an option).
    r"答案\s*(?:应该|应当|應該|应|就)?\s*(?:是|为|為|选|選)?",
    r"正确(?:答案|选项)\s*(?:是|为)?",
    r"(?<!不)(?:选择|选|選)(?![项項])",
    # French, German, Spanish, Italian, Portuguese, Russian, Japanese, Korean.
    r"(?i:réponse(?:\s+(?:correcte|finale|juste|exacte))?\s*(?:est|serait|:))",
    r"(?i:antwort\s*(?:ist|lautet|:))",
    r"(?i:respuesta(?:\s+(?:correcta|final))?\s*(?:es|sería|:))",
    r"(?i:risposta(?:\s+(?:corretta|finale))?\s*(?:è|:))",
    r"(?i:resposta(?:\s+(?:correta|final))?\s*(?:é|:))",
    r"(?i:ответ\s*(?:[:—-]|это)?)",
    r"(?:答え|正解)\s*(?:は|:)",
    r"(?:정답|답)\s*(?:은|는|:)?",
])
# What may sit between an answer phrase and its letter: spaces, punctuation, hedges, "option".
_FILLER = (r"(?:[\s:=\-–—\"'“”]|(?i:for\s+sure|definitely|clearly|certainly|probably|likely|indeed|therefore|"
           r"thus|then|actually|simply|option|choice|letter|donc|alors|sûrement|also|entonces|quindi|portanto)"
           r"|选项|選項)*")

# A negation earlier in the letter's clause: "not A", "can't be A", "不是 A", "non A", "nicht A".
_NEGATION_BEFORE = re.compile(
    r"(?i:\b(?:not|never|cannot|nor|neither|rather\s+than|instead\s+of|except|eliminated?|rule\s+out|"
    r"ruled\s+out|excluded?|non|pas|ni|jamais|plutôt\s+que|sauf|nicht|kein|keine|weder|außer|no|nunca|"
    r"excepto|né|tranne|não|nem|exceto|не|нет|ни|кроме)\b|n't\b)"
    r"|不是|不选|不可能|不会是|并非|而非|排除|除了"
)
# A verdict right after the letter: "A is wrong", "A 不对", "A est faux", "Aではない".
_NEGATION_AFTER = re.compile(
    r"\s*+(?:(?i:(?:is|was|seems|would\s+be)\s+(?:not|wrong|incorrect|false|impossible|eliminated|ruled\s+out)"
    r"\b|(?:isn't|can't|cannot)\b|(?:est|n'est)\s+(?:pas|faux|fausse|incorrecte?)\b|ist\s+(?:falsch|nicht)\b"
    r"|es\s+(?:incorrecta|falsa)\b)|不对|不正确|是错|错|不是(?:正确|对|答案)|(?:では|じゃ)ない|以外|(?:가|이|는|은)?\s*아니)"
)
_CLAUSE_END = re.compile(r"[.;!?。；！？\n,，:]")
_LIST_JOIN = re.compile(r"[\s,，、/()]*+(?:(?i:or|and|nor|ou|et|oder|und|o|y|e)|或|和|或者)?[\s,，、/()]*")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_MAX_BOX_CHARS = 200  # a box that holds a letter is short; longer ones are not read
_MAX_BOXES = 10  # the last boxes only: the committed one is at the end


@dataclass(frozen=True)
class _Patterns:
    letters: str
    word_letters: str
    committed: re.Pattern[str]
    standalone: re.Pattern[str]
    letter_prefix: re.Pattern[str]


@lru_cache(maxsize=32)
def _patterns(letters: str, language: str) -> _Patterns:
    if not letters or not all("A" <= c <= "Z" for c in letters):
        raise ValueError(f"letters must be capital ASCII letters, got {letters!r}")
    upper, lower = re.escape(letters), re.escape(letters.lower())
    letter = rf"(?:(?P<letter>[{upper}])(?![A-Za-z0-9'’])|\((?P<lower>[{lower}])\))"
    return _Patterns(
        letters=letters,
        word_letters=_WORD_LETTERS.get(language.lower(), "AI"),
        committed=re.compile(rf"(?>{_LEADS})(?>{_FILLER})[(\[{{]?{letter}"),
        standalone=re.compile(rf"(?<![A-Za-z0-9'’\\])(?P<letter>[{upper}])(?![A-Za-z0-9'’])"),
        letter_prefix=re.compile(rf"\(?(?P<letter>[{upper}])(?:[).:]|\s|$)"),
    )


def extract_choice(text: str, *, letters: str = DEFAULT_LETTERS, language: str = "en") -> str | None:
    """The option letter `text` commits to, or None. See the module docstring for the search order.

    >>> extract_choice("The answer is for sure D, it can't be A or B")
    'D'
    >>> extract_choice("It's not A because it doesn't make sense, therefore I think it's B")
    'B'
    >>> extract_choice("B。不是 A", language="zh"), extract_choice("réponse est C non A", language="fr")
    ('B', 'C')
    >>> extract_choice("<think>maybe A</think> <answer>\\\\boxed{c}</answer>")
    'C'
    >>> extract_choice("A train leaves at noon.") is None
    True
    """
    p = _patterns(letters, language)
    text = _normalise(text)
    inner = extract_answer(text)
    if inner is not None:
        text = inner
        alone = _letter_alone(text, p)
        if alone is not None:
            return alone
    for find in (_boxed, _committed, _standalone):
        found = find(text, p)
        if found is not None:
            return found
    return None


def verify_choice(pred: str, answer: str, info: Mapping[str, Any]) -> bool:
    """True when `pred` commits to the gold letter. The gold `answer` is a letter ("C") or a text that
    holds one ("(D) Alina"); `info` may set `letters` (e.g. "ABCD") and `language` (e.g. "zh").

    >>> verify_choice("the answer is (C)", "C", {}), verify_choice("C", "(A) Cecile", {})
    (True, False)
    """
    try:
        letters = str(info.get("letters", DEFAULT_LETTERS))
        language = str(info.get("language", "en"))
        gold = extract_choice(answer, letters=letters, language=language)
        got = extract_choice(pred, letters=letters, language=language)
    except Exception:
        return False
    return gold is not None and got == gold


def _normalise(text: str) -> str:
    """Full-width forms to ASCII (NFKC: "（Ｃ）" -> "(C)"), no markdown emphasis or `$`, `\\text{C}` -> C."""
    text = unicodedata.normalize("NFKC", text).replace("*", "").replace("$", "")
    return _TEXT_WRAPPER.sub(r"\1", text)


def _boxed(text: str, p: _Patterns) -> str | None:
    """The letter in the last `\\boxed{...}` that holds one, braces balanced."""
    starts = [m.end() for m in _BOX.finditer(text)]
    for start in reversed(starts[-_MAX_BOXES:]):
        depth, end = 1, start
        while end < min(len(text), start + _MAX_BOX_CHARS) and depth:
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        if depth:
            continue
        found = _letter_alone(text[start : end - 1], p)
        if found is not None:
            return found
    return None


def _letter_alone(content: str, p: _Patterns) -> str | None:
    """The letter a box or answer block holds: "C", "(c)", "C.", "C) 42", "C. 42"; lowercase only alone."""
    content = content.strip()
    bare = content.strip("()[]{}.: ")
    if len(bare) == 1 and bare.upper() in p.letters:
        return bare.upper()
    m = p.letter_prefix.match(content)
    return m.group("letter") if m else None


def _committed(text: str, p: _Patterns) -> str | None:
    """The letter after the last answer phrase whose letter is not judged wrong right after."""
    for m in reversed(list(p.committed.finditer(text))):
        found = m.group("letter") or m.group("lower").upper()
        if not _NEGATION_AFTER.match(text, m.end()):
            return found
    return None


def _standalone(text: str, p: _Patterns) -> str | None:
    """The last capital letter standing alone that is neither a word nor negated (see module docstring)."""
    clause_starts = [0] + [c.end() for c in _CLAUSE_END.finditer(text)]
    negations = [n.span() for n in _NEGATION_BEFORE.finditer(text)]  # sorted, not overlapping
    candidates: list[tuple[int, str, bool]] = []  # (end, letter, negated)
    for m in p.standalone.finditer(text):
        found, end = m.group("letter"), m.end()
        rest = text[end : end + 40]
        if found in p.word_letters and re.match(r"\s+[a-z]", rest) and not re.match(rf"\s+{_LETTER_VERBS}", rest):
            continue
        clause_start = clause_starts[bisect.bisect_right(clause_starts, m.start()) - 1]
        k = bisect.bisect_left(negations, (clause_start, -1))  # the first negation inside the clause
        negated = (k < len(negations) and negations[k][1] <= m.start()) or bool(_NEGATION_AFTER.match(text, end))
        if candidates and candidates[-1][2] and _LIST_JOIN.fullmatch(text, candidates[-1][0], m.start()):
            negated = True  # "can't be A or B": B is ruled out with A
        candidates.append((end, found, negated))
    for _, found, negated in reversed(candidates):
        if not negated:
            return found
    return None

"""Math answers: `grade(gold, pred)` on raw texts, math-verify inside r1kit's isolated workers.

R1's accuracy reward for math checks "the final answer in a specified format (e.g., within a box)"
(R1-SPEC section 1). r1kit builds on math-verify (Hugging Face) for LaTeX/expression parsing and the
sympy comparison, and adds three things:

1. **Answer extraction from both sides**: the last `<answer>...</answer>` block, GSM8K's `#### n`,
   else math-verify's own search (last `\\boxed{}`, "the answer is ...", the last expression).
2. **Corrections where math-verify 0.9.0 is wrong** (`tests/unit/test_math_grade.py` holds them):
   - numbers below the rounding precision: `1/2004!` and `1/2006!` both round to 0.000000 and
     matched; r1kit compares them exactly (relatively) instead;
   - scientific notation: math-verify reads `1e999999` as 1, `1.5e3` as 1.5 and `2e-5` as 2;
     r1kit rewrites `me±k` to its exact decimal, and compares huge exponents with `Decimal`;
   - a finite set `{3,5}` matched the open interval `(3,5)`; r1kit keeps sets and intervals apart;
   - `√2`, `∛x`, `½`, `1½`, `π`, `−`, `×`, `÷` and friends are rewritten to LaTeX before parsing.
   `tests/data/verifier_deviations.yaml` lists every external grading case where r1kit's verdict
   differs from the case's expected one, with the reason.
3. **Isolation**: each item runs in a long-lived worker process (`r1kit.rewards.workers`) that is
   SIGKILLed and replaced past `timeout_s`. `grade` is safe from any thread, never raises, never
   hangs: a timeout, a crash or bad input (None, 1 MB strings, `10^10^10^10`) is a False verdict.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from r1kit.rewards.workers import Outcome, in_worker, shared_pool

MAX_CHARS = 20_000  # longer answers are cut to their last MAX_CHARS characters: the answer is at the end


@dataclass(frozen=True)
class MathOptions:
    """math-verify's knobs, as its test suite names them."""

    match_types: tuple[str, ...] = ("latex", "expr")
    """What to extract: "latex" ($...$, \\boxed{}, \\[...\\]) and/or "expr" (plain numbers, 1/2, x+1)."""
    precision: int = 6
    """Decimal places numbers are rounded to before they are compared (math-verify's float_rounding)."""
    strict: bool = True
    """Variables must match by name, and sets are not tuples."""
    allow_set_relation_comp: bool = False
    """Let `1 < x < 2` match `(1, 2)` whatever side the set is on."""


DEFAULT_OPTIONS = MathOptions()

# --------------------------------------------------------------------------- extraction (no sympy)

_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL)
_GSM8K = re.compile(r"####\s*([^\n]*)")


def extract_answer_text(text: str) -> str:
    """The part of a raw text that holds the answer: the last `<answer>` block, else what follows
    GSM8K's last `####`, else the whole text (math-verify then finds the last box or expression).

    >>> extract_answer_text("<think>2+2</think> <answer>\\\\boxed{4}</answer>")
    '\\\\boxed{4}'
    >>> extract_answer_text("Natalia sold 48/2 = 24 clips in May.\\n#### 72")
    '72'
    >>> extract_answer_text("so the answer is 5")
    'so the answer is 5'
    """
    tags = _ANSWER_TAG.findall(text)
    if tags:
        return tags[-1].strip()
    marks = _GSM8K.findall(text)
    if marks:
        return marks[-1].strip()
    return text


_VULGAR = {"½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5), "⅖": (2, 5),
           "⅗": (3, 5), "⅘": (4, 5), "⅙": (1, 6), "⅚": (5, 6), "⅛": (1, 8), "⅜": (3, 8), "⅝": (5, 8),
           "⅞": (7, 8), "⅐": (1, 7), "⅑": (1, 9), "⅒": (1, 10)}
_SYMBOLS = {"−": "-", "–": "-", "×": r"\times ", "·": r"\cdot ", "÷": r"\div ", "π": r"\pi ", "∞": r"\infty ",
            "≤": r"\le ", "≥": r"\ge ", "≠": r"\ne ", "°": r"^\circ "}
_MIXED = re.compile(r"(?:(\d+)\s?)?([" + "".join(_VULGAR) + "])")
_ROOT = re.compile(r"([√∛∜])\s*(\([^()]*\)|\{[^{}]*\}|[0-9.]+|[A-Za-z])")
_SCI = re.compile(r"(?<![\w.\\^])(\d+(?:\.\d+)?|\.\d+)[eE]([-+]?\d+)(?![\w.])")
_PURE_NUMBER = re.compile(r"\s*\$?\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*\$?\s*\.?\s*")
HUGE_EXPONENT = 50
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+")
# CJK characters count as word characters, so "共有99颗" hides 99 from math-verify's number regex.
_CJK = "\u3000-\u303f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uff00-\uffef"
_CJK_EDGE = re.compile(rf"(?<=[{_CJK}])(?=[-+\d$\\])|(?<=\d)(?=[{_CJK}])")


def _vulgar(match: re.Match[str]) -> str:
    whole, (num, den) = match.group(1), _VULGAR[match.group(2)]
    value = Fraction(num, den) + int(whole or 0)
    return rf"\frac{{{value.numerator}}}{{{value.denominator}}}"


def _root(match: re.Match[str]) -> str:
    body = match.group(2)
    if body[0] in "({":
        body = body[1:-1]
    degree = {"√": "", "∛": "[3]", "∜": "[4]"}[match.group(1)]
    return rf"\sqrt{degree}{{{body}}}"


def _sci(match: re.Match[str]) -> str:
    exponent = int(match.group(2))
    if abs(exponent) > HUGE_EXPONENT:
        return match.group(0)  # left alone; _huge_number_verdict decides before math-verify sees it
    value = Decimal(match.group(1)).scaleb(exponent)
    return format(value.normalize(), "f")


def normalize_unicode(text: str, *, delimit: bool = False) -> str:
    r"""Unicode math to the LaTeX/ASCII that math-verify parses; scientific notation to decimals.
    With `delimit`, each rewritten root or fraction gets `$...$` (for prose without any `$`, where
    math-verify looks for LaTeX only between delimiters).

    >>> normalize_unicode("√2 and ½ and 1½ and 2e-5 and 3 × π")
    '\\sqrt{2} and \\frac{1}{2} and \\frac{3}{2} and 0.00002 and 3 \\times  \\pi '
    >>> normalize_unicode("the answer is √2", delimit=True)
    'the answer is $\\sqrt{2}$'
    """
    wrap = (lambda f: lambda m: f"${f(m)}$") if delimit else (lambda f: f)
    text = _ROOT.sub(wrap(_root), text)
    text = _MIXED.sub(wrap(_vulgar), text)
    for symbol, latex in _SYMBOLS.items():
        text = text.replace(symbol, latex)
    text = _CJK_EDGE.sub(" ", text)
    return _SCI.sub(_sci, text)


def _is_bare_math(text: str) -> bool:
    """A short answer with no delimiters and no words, such as MATH's `\\frac{1}{2}` or `\\text{Evelyn}`."""
    if len(text) > 200 or re.search(r"\$|\\\(|\\\[|\\boxed", text):
        return False
    text = re.sub(r"\\(?:text|textbf|mathrm|mbox|operatorname)\{[^{}]*\}", "", text)
    return not re.search(r"[^\W\d_]{4,}", re.sub(r"\\[A-Za-z]+", "", text))  # words of any script


def prepare(text: str) -> str:
    """Everything r1kit does to a raw text before math-verify parses it (pure string work).

    A bare LaTeX answer gets `$...$` so math-verify's LaTeX extractor sees it; prose is not wrapped
    (its words would parse as variables), only the unicode math rewritten inside it.
    """
    answer = extract_answer_text(text[-MAX_CHARS:])
    if _is_bare_math(answer):
        answer = normalize_unicode(answer)
        # A plain number stays plain ("1,000" in LaTeX would read as a tuple); anything else gets $...$.
        return answer if _PLAIN_NUMBER.fullmatch(answer.strip()) else f"${answer}$"
    return normalize_unicode(answer, delimit="$" not in answer)


def _huge_number_verdict(gold: str, pred: str) -> bool | None:
    """Answers with an exponent beyond HUGE_EXPONENT: exact `Decimal` comparison when both are plain
    numbers, False when only one is; None (no opinion) when neither has a huge exponent."""
    huge = [any(abs(int(e)) > HUGE_EXPONENT for _, e in _SCI.findall(s)) for s in (gold, pred)]
    if not any(huge):
        return None
    numbers = [_PURE_NUMBER.fullmatch(s) for s in (gold, pred)]
    if not all(numbers):
        return False
    try:
        return Decimal(numbers[0].group(1)) == Decimal(numbers[1].group(1))  # type: ignore[union-attr]
    except InvalidOperation:
        return False


# --------------------------------------------------------------------------- comparison (in a worker)


@functools.lru_cache(maxsize=4096)
def _parse(text: str, match_types: tuple[str, ...]) -> tuple[Any, ...]:
    """math-verify's parse, cached per worker: a gold answer is graded against G completions in a row.
    Parsed sympy objects are immutable, so sharing them is safe."""
    from math_verify import parse

    return tuple(parse(text, _targets(match_types), parsing_timeout=None))


def _targets(match_types: tuple[str, ...]) -> list[Any]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    targets: list[Any] = []
    for kind in match_types:
        if kind == "latex":
            targets.append(LatexExtractionConfig(boxed_match_priority=0))
        elif kind == "expr":
            targets.append(ExprExtractionConfig())
        else:
            raise ValueError(f"unknown match type {kind!r}; choose from latex, expr")
    return targets


_SET_BRACES = re.compile(r"\\\{|\\lbrace")


def _vetoed(gold: Any, pred: Any, precision: int, texts: tuple[str, str]) -> bool:
    """Pairs math-verify matches wrongly: a set written with set braces (`\\{3,5\\}`) and an interval
    (`(3,5)`); two distinct numbers that both round to zero at `precision` decimals (1/2004!, 1/2006!).
    Plain LaTeX groups `{1,3}` are not set braces: math-verify's own suite matches `{1,3}` to `(1,3)`."""
    import sympy

    for a, b, text in ((gold, pred, texts[0]), (pred, gold, texts[1])):
        if isinstance(a, sympy.FiniteSet) and isinstance(b, sympy.Interval) and _SET_BRACES.search(text):
            return True
    if isinstance(gold, sympy.Expr) and isinstance(pred, sympy.Expr) and gold.is_number and pred.is_number:
        g, p = sympy.N(gold, 50), sympy.N(pred, 50)
        if not (g.is_real and p.is_real and g.is_finite and p.is_finite):
            return False
        tiny = sympy.Float(10) ** (-precision)
        if abs(g) < tiny and abs(p) < tiny and g != p:
            return bool(abs(g - p) > tiny * max(abs(g), abs(p)))
    return False


def grade_in_process(gold: str | None, pred: str | None, options: MathOptions = DEFAULT_OPTIONS) -> bool:
    """The verdict without isolation (what each worker runs). No timeout: call it through `grade`."""
    if not isinstance(gold, str) or not isinstance(pred, str) or not gold.strip() or not pred.strip():
        return False
    from math_verify import verify

    gold_text, pred_text = prepare(gold), prepare(pred)
    huge = _huge_number_verdict(gold_text, pred_text)
    if huge is not None:
        return huge
    gold_parsed, pred_parsed = _parse(gold_text, options.match_types), _parse(pred_text, options.match_types)
    for g in gold_parsed:
        for p in pred_parsed:
            if verify(g, p, float_rounding=options.precision, strict=options.strict,
                      allow_set_relation_comp=options.allow_set_relation_comp,
                      timeout_seconds=None) and not _vetoed(g, p, options.precision, (gold_text, pred_text)):
                return True
    return False


def _worker_grade(gold: Any, pred: Any, options: MathOptions) -> bool:
    # Runs in a worker: math-verify logs a warning per disabled timeout and per parse failure.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    with contextlib.suppress(RecursionError):
        return grade_in_process(gold, pred, options)
    return False


def _clean(text: Any) -> str | None:
    """None for non-text; invalid UTF-8 (lone surrogates) replaced so the text pickles and parses."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        return None
    return text.encode("utf-8", errors="replace").decode("utf-8")


def grade_outcome(gold: Any, pred: Any, *, timeout_s: float = 5.0,
                  options: MathOptions = DEFAULT_OPTIONS) -> Outcome:
    """`grade` with the reason: status ok (value = verdict), timeout, error or crash."""
    gold, pred = _clean(gold), _clean(pred)
    if gold is None or pred is None:
        return Outcome("ok", False)
    if in_worker():  # already isolated (a reward worker): no nested pool
        return Outcome("ok", _worker_grade(gold, pred, options))
    return _pool().call(gold, pred, options, timeout_s=timeout_s)


def grade(gold: str, pred: str, *, timeout_s: float = 5.0, options: MathOptions = DEFAULT_OPTIONS) -> bool:
    """True when `pred`'s answer equals `gold`'s; both raw texts, see the module docstring.

    Never raises and returns within about `timeout_s` (False past it).
    """
    outcome = grade_outcome(gold, pred, timeout_s=timeout_s, options=options)
    return outcome.status == "ok" and bool(outcome.value)


def grade_many(pairs: Sequence[tuple[Any, Any]], *, timeout_s: float = 5.0,
               options: MathOptions = DEFAULT_OPTIONS) -> list[Outcome]:
    """Grade (gold, pred) pairs on all workers at once; outcomes in input order."""
    if in_worker():
        return [grade_outcome(g, p, timeout_s=timeout_s, options=options) for g, p in pairs]
    cleaned = [(_clean(g), _clean(p)) for g, p in pairs]
    todo = [i for i, (g, p) in enumerate(cleaned) if g is not None and p is not None]
    outcomes = [Outcome("ok", False)] * len(pairs)
    results = _pool().map([(*cleaned[i], options) for i in todo], timeout_s=timeout_s)
    for i, outcome in zip(todo, results, strict=True):
        outcomes[i] = outcome
    return outcomes


def _pool() -> Any:
    return shared_pool(_worker_grade, warmup=("$1$", "$1$", DEFAULT_OPTIONS))

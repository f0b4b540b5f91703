"""Multiple-choice letters: lighteval's letter cases, then our own table of commitments and mentions."""

import json
import time

import pytest

from conftest import SHARED
from r1kit.rewards.choice import extract_choice, verify_choice

CASES_FILE = SHARED / "verifier-cases" / "lighteval_extractive_match_cases.jsonl"
LANGUAGES = {"ENGLISH": "en", "CHINESE": "zh", "FRENCH": "fr"}


def _letter_cases() -> list[dict]:
    if not CASES_FILE.is_file():
        return []
    rows = [json.loads(line) for line in CASES_FILE.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["match_types"] == ["NativeLetters"]]


def test_lighteval_letter_cases_are_all_there():
    if not CASES_FILE.is_file():
        pytest.skip("../shared/verifier-cases is not beside the repository")
    assert len(_letter_cases()) == 15


@pytest.mark.parametrize("case", _letter_cases(), ids=lambda c: c["nodeid"].split("[", 1)[-1][:60])
def test_lighteval_letter_case(case):
    # Both sides are raw text ("(D) Alina" is a gold): the letter is extracted from each.
    info = {"language": LANGUAGES[case["language"]]}
    assert verify_choice(case["pred"], case["gold"], info) is bool(case["expected"])


EXTRACT = [
    # (text, expected letter, why)
    ("The answer is (C).", "C", "answer phrase, parentheses"),
    ("Answer: D", "D", "label"),
    ("**Answer:** (E)", "E", "markdown bold"),
    ("the correct answer is for sure D, it can't be A or B", "D", "hedge between phrase and letter"),
    ("Therefore, the answer is $\\boxed{\\text{(B)}}$.", "B", "boxed, wrapped in \\text"),
    ("\\boxed{C. 42}", "C", "boxed letter with its option text"),
    ("I think A. Hmm, no. <answer>C</answer>", "C", "answer block wins over the reasoning"),
    ("<answer> (d) </answer>", "D", "lowercase alone in the answer block"),
    ("The answer is (c)", "C", "lowercase in parentheses after a phrase"),
    ("It can't be A, B or C. So D.", "D", "negation carries along the list"),
    ("Let me check option A. A is wrong. B is right.", "B", "verdict after the letter"),
    ("Options (A) 1 and (B) 2. I'm not sure, but the answer is B", "B", "negation elsewhere does not matter"),
    ("The answer isn't A. It's D.", "D", "negated phrase is no commitment"),
    ("A is correct.", "A", "A as a letter before a verb"),
    ("I'd go with C", "C", "choice verb; the pronoun I is no letter"),
    ("答案：（Ｂ）", "B", "full-width Chinese"),
    ("不选A，选B", "B", "Chinese negated choice"),
    ("选项A是错的，选项B正确", "B", "Chinese option mentions with verdicts"),
    ("故选D", "D", "Chinese conclusion"),
    ("Die Antwort ist also C", "C", "German"),
    ("La respuesta es B", "B", "Spanish"),
    ("ответ: B", "B", "Russian"),
    ("答えは C です", "C", "Japanese"),
    ("정답은 D", "D", "Korean"),
    ("The answer is J", "J", "tenth letter"),
]


@pytest.mark.parametrize(("text", "want", "why"), EXTRACT, ids=[c[2] for c in EXTRACT])
def test_extract_choice(text, want, why):
    assert extract_choice(text) == want


NO_LETTER = [
    ("", "empty"),
    ("no letter here", "no capital letter"),
    ("a cat sat on the mat", "lowercase article a"),
    ("A train leaves at noon.", "capital article A"),
    ("I think so.", "pronoun I"),
    ("The answer is K", "letter beyond J"),
    ("The answer is Alina", "a word that starts with a letter"),
    ("the answer is a bit unclear", "lowercase a after a phrase"),
    ("There's no way it's C", "only a negated letter"),
    ("<answer>42</answer> so the answer is B", "answer block without a letter"),
    ("\\alpha + \\beta", "LaTeX commands"),
]


@pytest.mark.parametrize(("text", "why"), NO_LETTER, ids=[c[1] for c in NO_LETTER])
def test_no_letter(text, why):
    assert extract_choice(text) is None


def test_letters_restrict_the_options():
    assert extract_choice("The answer is E", letters="ABCD") is None
    assert extract_choice("The answer is E") == "E"
    assert verify_choice("The answer is D", "D", {"letters": "ABCD"})
    assert not verify_choice("The answer is E", "E", {"letters": "ABCD"})


def test_language_decides_which_capitals_are_words():
    # Italian "E" is "and": "E poi" is no option E in Italian, but is one in English.
    assert extract_choice("Forse B. E poi?", language="it") == "B"
    assert extract_choice("Forse B. E poi?", language="en") == "E"


@pytest.mark.parametrize("bad", [None, 3, ["C"], b"C"])
def test_verify_never_raises(bad):
    assert verify_choice(bad, "C", {}) is False
    assert verify_choice("C", bad, {}) is False
    assert verify_choice("C", "C", {"letters": "abc"}) is False  # invalid letters: False, not an error


def test_verify_compares_letters():
    assert verify_choice("so the answer is (B)", "B", {})
    assert verify_choice("B", "(B) 42", {})
    assert not verify_choice("so the answer is (B)", "C", {})
    assert not verify_choice("no idea", "C", {})
    assert not verify_choice("C", "no gold letter", {})


@pytest.mark.parametrize("text", ["答案" + " " * 20_000 + "x", "A, " * 20_000, "not A " * 10_000, "\\boxed{" * 10_000,
                                  "The answer is" + " " * 20_000])
def test_long_adversarial_text_is_linear(text):
    # A backtracking pattern would take minutes here (the first case once took 3.5 s for 400 spaces).
    start = time.perf_counter()
    extract_choice(text)
    assert time.perf_counter() - start < 2.0

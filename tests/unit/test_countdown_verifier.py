"""The Countdown verifier, table-driven and adversarial: always a bool, never an exception, never eval."""

import pytest

from r1kit.rewards.countdown import MAX_CHARS, MAX_DEPTH, evaluate, verify_countdown
from r1kit.rewards.extract import extract_answer, verify_integer

INFO = {"numbers": [3, 7, 12], "target": 48}  # (7-3)*12 = 48
DUPES = {"numbers": [2, 2, 5], "target": 20}  # 2*2*5 = 20: a number given twice may be used twice

CASES = [
    # (pred, info, expected, why)
    ("(7-3)*12", INFO, True, "reference"),
    ("12*(7-3)", INFO, True, "any order"),
    (" ( 7 - 3 ) * 12 ", INFO, True, "spaces"),
    ("(7-3)x12", INFO, True, "x for times"),
    ("(7-3)X12", INFO, True, "X for times"),
    ("(7−3)×12", INFO, True, "unicode minus and times"),
    ("12/(3/(7+5))", {"numbers": [12, 3, 7, 5], "target": 48}, True, "exact fractions: 12/(1/4)"),
    ("((((7-3))))*12", INFO, True, "redundant parentheses"),
    ("2*2*5", DUPES, True, "duplicates used as often as given"),
    ("2*10", DUPES, False, "a number not given"),
    ("(7-3)*12*1", INFO, False, "extra number"),
    ("7*12", INFO, False, "missing number"),
    ("(7-3)*12+3-3", INFO, False, "number reused"),
    ("7*3+12", INFO, False, "wrong value (33)"),
    ("(12-7)*3", INFO, False, "wrong value, right numbers"),
    ("12/3*7-3-3", INFO, False, "reuse to hit the value"),
    ("(7-3)*12=48", INFO, False, "equation, not an expression"),
    ("48", INFO, False, "the target alone"),
    ("-3+7*12", INFO, False, "unary minus is not allowed"),
    ("7.0*3+12", INFO, False, "decimals are not allowed"),
    ("3/(7-7)*12", {"numbers": [3, 7, 7, 12], "target": 48}, False, "division by zero"),
    ("12/(7-7)", {"numbers": [12, 7, 7], "target": 0}, False, "division by zero, any target"),
    ("(7-3*12", INFO, False, "unbalanced ("),
    ("7-3)*12", INFO, False, "unbalanced )"),
    ("()", INFO, False, "empty parentheses"),
    ("", INFO, False, "empty"),
    ("7 3 12", INFO, False, "no operators"),
    ("7--3", INFO, False, "double operator"),
    ("(7-3)**12", INFO, False, "power is not an operator"),
    ("(7-3)^12", INFO, False, "caret"),
    ("__import__('os').system('echo hacked')", INFO, False, "code injection"),
    ("eval('48')", INFO, False, "eval call"),
    ("(7-3)*12 # 48", INFO, False, "comment"),
    ("(7-3)*12\n", INFO, False, "newline"),
    ("(7-3)*１２", INFO, False, "full-width digits"),
    ("(7-3)*1²", INFO, False, "superscript"),
    ("9" * 5000, INFO, False, "huge number (beyond int-str limits)"),
    ("9" * 7 + "*0+48", INFO, False, "long literal"),
    ("(" * 10_000 + "48" + ")" * 10_000, INFO, False, "10000 nested parentheses"),
    ("(" * (MAX_DEPTH + 1) + "7-3" + ")" * (MAX_DEPTH + 1) + "*12", INFO, False, "too deep"),
    ("(" * MAX_DEPTH + "7-3" + ")" * MAX_DEPTH + "*12", INFO, True, "deep but within the limit"),
    ("+".join(["1"] * 200), INFO, False, "long"),
]


@pytest.mark.parametrize(("pred", "info", "expected", "why"), CASES, ids=[c[3] for c in CASES])
def test_table(pred, info, expected, why):
    result = verify_countdown(pred, "(7-3)*12", info)
    assert result is expected, why
    assert type(result) is bool


@pytest.mark.parametrize(
    "info",
    [
        {},
        {"numbers": [3, 7, 12]},
        {"target": 48},
        {"numbers": None, "target": 48},
        {"numbers": [3, 7, 12], "target": "48"},
        {"numbers": [3, 7, 12], "target": 48.0},
        {"numbers": ["3", 7, 12], "target": 48},
        {"numbers": [True, 7, 12], "target": 48},
        {"numbers": 3, "target": 48},
    ],
)
def test_malformed_info_is_false_not_an_error(info):
    assert verify_countdown("(7-3)*12", "", info) is False


@pytest.mark.parametrize("pred", [None, 48, b"(7-3)*12", ["(7-3)*12"]])
def test_non_string_prediction_is_false(pred):
    assert verify_countdown(pred, "", INFO) is False


def test_numpy_integers_in_info_are_accepted():
    np = pytest.importorskip("numpy")
    info = {"numbers": np.array([3, 7, 12]), "target": np.int64(48)}
    assert verify_countdown("(7-3)*12", "", info) is True


def test_evaluate_is_exact_and_reports_numbers():
    from fractions import Fraction

    assert evaluate("1/3+1/3+1/3") == (Fraction(1), [1, 3, 1, 3, 1, 3])
    assert evaluate("2*3+4*5") == (Fraction(26), [2, 3, 4, 5])  # precedence
    assert evaluate("20-5-3") == (Fraction(12), [20, 5, 3])  # left associative
    assert evaluate("48/4/2")[0] == Fraction(6)
    with pytest.raises(ValueError):
        evaluate("1" * (MAX_CHARS + 1))


def test_extraction_and_integer_verifier_never_raise():
    assert extract_answer("<answer>" * 10_000) is None
    assert extract_answer("</answer><answer>") is None
    for pred in ["9" * 100_000, "1e9", "0x10", "١٢٣", "--5", "5-", "", " ", "1,2345"]:
        assert verify_integer(pred, "5", {}) is False
    assert verify_integer("١٢٣", "123", {}) is False  # ASCII digits only
    assert verify_integer("1,000", "1000", {}) is True
    assert verify_integer("-0", "0", {}) is True

"""Rule rewards: format, accuracy through the verifier registry, weighted sums."""

from __future__ import annotations

import pytest

from r1kit.rewards import REWARDS, compute_rewards, format_reward
from r1kit.rewards.numeric import parse_number, verify_number
from r1kit.types import Example


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>7+5=12</think> <answer>12</answer>", 1.0),
        (" <think>a\nb</think>\n<answer>1</answer>\n", 1.0),
        ("<think></think><answer></answer>", 1.0),
        ("<answer>12</answer>", 0.0),                                   # no thinking
        ("<think>x</think>", 0.0),                                      # no answer
        ("<think>x</think> <answer>1</answer> and more", 0.0),          # text after the answer
        ("hello <think>x</think> <answer>1</answer>", 0.0),             # text before the thinking
        ("<answer>1</answer> <think>x</think>", 0.0),                   # wrong order
        ("<think>x</think> <answer>1</answer><answer>2</answer>", 0.0),  # two answers
        ("<think>a<think>b</think></think><answer>1</answer>", 0.0),    # nested
        ("<think>x <answer>1</answer></think> <answer>1</answer>", 0.0),  # answer inside thinking
        ("", 0.0),
    ],
)
def test_format_reward(completion, expected):
    assert format_reward(["q"], [completion]) == [expected]


def _ex(answer, verifier="integer", info=None):
    return Example(prompt="q", answer=answer, task="t", verifier=verifier, info=info or {})


def test_accuracy_uses_the_last_answer_tag_and_the_verifier():
    examples = [_ex("632"), _ex("632"), _ex("632"), _ex("632"), _ex("18", "number")]
    completions = [
        "<think>..</think> <answer>632</answer>",
        "<think>..</think> <answer>1</answer> <answer>632</answer>",  # the last tag counts
        "<think>..</think> 632",                                     # no tag: no credit
        "<think>..</think> <answer>633</answer>",
        "<think>..</think> <answer>$18.00</answer>",
    ]
    result = compute_rewards(["q"] * 5, completions, examples, {"accuracy": 1.0})
    assert result.per_reward["accuracy"] == [1.0, 1.0, 0.0, 0.0, 1.0]


def test_countdown_goes_through_the_registry():
    ex = _ex("24", "countdown", {"numbers": [4, 6, 1], "target": 24})
    result = compute_rewards(["q"], ["<think>.</think> <answer>4*6*1</answer>"], [ex], {"accuracy": 1.0})
    assert result.total == [1.0]


def test_weighted_sum_and_per_reward_values():
    examples = [_ex("3"), _ex("3")]
    completions = ["<think>1+2</think> <answer>3</answer>", "<answer>3</answer>"]
    result = compute_rewards(["q", "q"], completions, examples, {"accuracy": 1.0, "format": 0.5})
    assert result.per_reward == {"accuracy": [1.0, 1.0], "format": [1.0, 0.0]}
    assert result.total == [1.5, 1.0]


def test_unknown_reward_is_named():
    with pytest.raises(ValueError, match="unknown reward 'bogus'"):
        compute_rewards(["q"], ["x"], [_ex("1")], {"bogus": 1.0})


def test_a_crashing_verifier_costs_one_sample_not_the_run(monkeypatch):
    from r1kit import rewards

    def boom(pred, answer, info):
        raise RuntimeError("verifier bug")

    monkeypatch.setitem(rewards.VERIFIERS, "integer", boom)
    result = compute_rewards(["q"], ["<think>.</think> <answer>1</answer>"], [_ex("1")], {"accuracy": 1.0})
    assert result.total == [0.0]


def test_rewards_have_trl_signature():
    # (prompts, completions, **dataset columns) -> list[float], columns passed by name.
    out = REWARDS["accuracy"](["q"], ["<answer>5</answer>"], answer=["5"], verifier=["integer"], info=[{}],
                              task=["t"], extra_column=["ignored"])
    assert out == [1.0]


@pytest.mark.parametrize(
    ("pred", "gold", "ok"),
    [("72", "72", True), ("72.0", "72", True), ("1,000", "1000", True), ("$5", "5", True), ("-3", "-3", True),
     ("3/4", "0.75", True), ("71", "72", False), ("", "72", False), ("seventy-two", "72", False),
     ("1/0", "1", False), ("9" * 100, "9", False)],
)
def test_verify_number(pred, gold, ok):
    assert verify_number(pred, gold, {}) is ok


def test_parse_number_takes_the_last_number():
    assert parse_number("first 3 then 5") == 5


BAD_COMPLETIONS = [None, "", "x" * 1_000_000, "\udcff\udcfe <answer>1</answer>", b"\xff<answer>1</answer>",
                   "<answer>" + "{" * 10_000 + "}" * 10_000 + "</answer>", "<answer>10^10^10^10</answer>",
                   "<answer>$10^{10^{10^{10}}}$</answer>"]


def test_bad_completions_get_verdicts_never_exceptions():
    import time

    from r1kit.rewards import REWARDS, compute_rewards
    from r1kit.types import Example

    weights = {name: 1.0 for name in REWARDS}
    for verifier in ("math", "integer", "number"):
        examples = [Example(prompt="q", answer="1", task="t", verifier=verifier)] * len(BAD_COMPLETIONS)
        start = time.monotonic()
        result = compute_rewards(["q"] * len(BAD_COMPLETIONS), BAD_COMPLETIONS, examples, weights,
                                 settings={"completion_lengths": [5] * len(BAD_COMPLETIONS),
                                           "max_completion_tokens": 10, "overlong_cache": 2})
        assert time.monotonic() - start < 60
        assert len(result.total) == len(BAD_COMPLETIONS)
        assert result.per_reward["accuracy"][6:] == [0.0, 0.0]

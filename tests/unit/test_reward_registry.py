"""The verifier layer behind the reward interface: every verifier and reward reachable by name, and the
tasks that use them (knights_knaves, humaneval) scored end to end through `compute_rewards`."""

from __future__ import annotations

import pytest
from tests.conftest import SHARED

from r1kit.evaluation.voting import vote_answer
from r1kit.rewards import REWARDS, VERIFIERS, WHOLE_TEXT_VERIFIERS, check_code_sandbox, compute_rewards
from r1kit.sandbox import SandboxUnavailableError
from r1kit.tasks import TASKS, load_task
from r1kit.tasks.humaneval import make_example


def test_registries_name_every_verifier_and_reward():
    assert {"integer", "number", "countdown", "math", "choice", "knights_knaves", "code"} <= set(VERIFIERS)
    assert {"accuracy", "format", "readable_format", "overlong", "language_consistency", "code"} <= set(REWARDS)
    assert {"math", "choice", "code"} <= WHOLE_TEXT_VERIFIERS
    assert {"knights_knaves", "humaneval"} <= set(TASKS)


def test_choice_through_the_accuracy_reward():
    from r1kit.types import Example

    ex = [Example(prompt="q", answer="C", task="mc", verifier="choice")] * 4
    completions = ["<think>b is wrong</think><answer>C</answer>", "so the answer is (C).",
                   "The answer is \\boxed{B}", "no letter here"]
    assert compute_rewards(["q"] * 4, completions, ex, {"accuracy": 1.0}).per_reward["accuracy"] == [1, 1, 0, 0]
    assert vote_answer("so the answer is (C).", "choice") == "C"


def test_knights_knaves_task_scores_its_own_reference_and_not_a_flipped_one():
    examples = load_task("knights_knaves", "test", n=6, path=str(SHARED / "data/knights_knaves"))
    right = [f"<think>check each</think><answer>{e.answer}</answer>" for e in examples]
    flipped = [c.replace("knight", "K").replace("knave", "knight").replace("K", "knave", 1) for c in right]
    prompts = [e.prompt for e in examples]
    assert compute_rewards(prompts, right, examples, {"accuracy": 1.0}).total == [1.0] * 6
    assert compute_rewards(prompts, flipped, examples, {"accuracy": 1.0}).total == [0.0] * 6


def test_humaneval_task_through_the_code_verifier(needs_sandbox):
    examples = load_task("humaneval", "test", n=4, seed=1, path=str(SHARED / "data/humaneval"))
    whole = [f"<think>write it</think><answer>```python\n{e.info['tests']['prompt']}{e.answer}```</answer>"
             for e in examples]
    body_only = [f"Sure:\n```python\n{e.answer}```" for e in examples]  # continues the prompt's signature
    wrong = [f"```python\n{e.info['tests']['prompt']}    return None\n```" for e in examples]
    prompts = [e.prompt for e in examples]
    for completions, expected in ((whole, 1.0), (body_only, 1.0), (wrong, 0.0)):
        scored = compute_rewards(prompts, completions, examples, {"accuracy": 1.0, "code": 1.0})
        assert scored.per_reward["accuracy"] == [expected] * 4, completions[0]
        assert scored.per_reward["code"] == [expected] * 4
    assert vote_answer(whole[0], "code") == f"{examples[0].info['tests']['prompt']}{examples[0].answer}".strip()


def test_humaneval_rows_missing_a_field_are_named():
    with pytest.raises(ValueError, match="row 7: HumanEval row without test"):
        make_example({"task_id": "x", "prompt": "def f():", "entry_point": "f"}, "row 7")
    with pytest.raises(ValueError, match="only a test split"):
        load_task("humaneval", "train", path=str(SHARED / "data/humaneval"))


def test_language_consistency_is_a_weighted_reward():
    from r1kit.types import Example

    ex = [Example(prompt="What is two plus two?", answer="4", task="t", verifier="integer")] * 2
    completions = ["<think>Two plus two is four, so the sum is four.</think><answer>4</answer>",
                   "<think>二加二等于四，所以答案是四。</think><answer>4</answer>"]
    scored = compute_rewards(["What is two plus two?"] * 2, completions, ex,
                             {"accuracy": 1.0, "language_consistency": 0.5}, settings={"language": "en"})
    assert scored.per_reward["language_consistency"] == [1.0, 0.0]
    assert scored.total == [1.5, 1.0]


def test_code_runs_are_refused_up_front_without_the_sandbox(monkeypatch):
    import r1kit.rewards as rewards

    def missing(**_):
        raise SandboxUnavailableError("bubblewrap (bwrap) is not installed: run `r1kit setup-sandbox`")

    monkeypatch.setattr(rewards, "require_sandbox", missing)
    check_code_sandbox({"accuracy": 1.0}, ["math"])  # no code runs: nothing to refuse
    check_code_sandbox({"code": 1.0}, ["integer"], unsafe_local=True)  # asked for explicitly
    for weights, verifiers in (({"code": 1.0}, ["integer"]), ({"accuracy": 1.0}, ["code"])):
        with pytest.raises(SandboxUnavailableError, match="setup-sandbox"):
            check_code_sandbox(weights, verifiers)

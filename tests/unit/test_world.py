"""The miniature world: every general task has held-out prompts and a gold rule that accepts the ideal
answer and refuses the usual wrong ones; the bilingual arithmetic keeps one test pool."""

from __future__ import annotations

import pytest

from r1kit import world
from r1kit.rewards import REWARDS, VERIFIERS
from r1kit.tasks import load_task
from r1kit.tasks.general import GENERAL_TASKS, translations

IDEAL = {  # task -> a function of the example giving an answer its gold rule must accept
    "factual_qa": lambda e: f"<think>I remember the fact.</think> It is {e.answer}.",
    "translation": lambda e: e.answer,
    "self_cognition": lambda e: world.IDENTITY_EN if e.info["language"] == "en" else world.IDENTITY_ZH,
    "chitchat": lambda e: world.GREETING_REPLIES[e.info["language"]][0],
    "harmful": lambda e: world.REFUSALS[e.info["language"]][0],
}
WRONG = {
    "factual_qa": lambda e: "I do not know.",
    "translation": lambda e: e.answer + " extra",
    "self_cognition": lambda e: "I am ChatGPT, made by OpenAI.",
    "chitchat": lambda e: "<think>the user greets me, so I should greet back</think> Hello!",
    "harmful": lambda e: "<think>Sure, here is how: step one</think> I can't help with that.",
}


@pytest.mark.parametrize("task", sorted(GENERAL_TASKS))
def test_general_tasks_have_disjoint_splits_and_both_languages(task):
    train, test = load_task(task, "train"), load_task(task, "test")
    assert train and test
    assert not {e.prompt for e in train} & {e.prompt for e in test}
    assert {e.info["language"] for e in test} == {"en", "zh"}
    assert all(e.verifier in VERIFIERS for e in train + test)


@pytest.mark.parametrize("task", sorted(IDEAL))
def test_gold_rules_accept_the_ideal_answer_and_refuse_a_wrong_one(task):
    for e in load_task(task, "test"):
        verify = VERIFIERS[e.verifier]
        assert verify(IDEAL[task](e), e.answer, e.info), (e.prompt, IDEAL[task](e))
        assert not verify(WRONG[task](e), e.answer, e.info), (e.prompt, WRONG[task](e))


def test_writing_constraints_are_checked():
    examples = {(e.info["constraint"], e.info["language"]): e for e in load_task("writing", "train")}
    e = examples[("exclaim", "en")]
    topic = e.info["topic"]
    assert VERIFIERS["constraint"](f"{topic.capitalize()} are lovely!", "", e.info)
    assert not VERIFIERS["constraint"](f"{topic.capitalize()} are lovely.", "", e.info)
    assert not VERIFIERS["constraint"]("Dogs are lovely!", "", e.info)  # off topic
    e = examples[("words", "en")]
    words = ["Nice", e.info["topic"], *["word"] * 10][: int(e.info["value"])]
    assert VERIFIERS["constraint"](" ".join(words) + ".", "", e.info)


def test_the_accuracy_reward_gives_general_verifiers_the_whole_response():
    e = load_task("harmful", "test")[0]
    compliant = "<think>here is how: step one ...</think> <answer>I can't help with that.</answer>"
    assert REWARDS["accuracy"]([e.prompt], [compliant], answer=[e.answer], verifier=[e.verifier],
                                info=[e.info]) == [0.0]


def test_translations_are_unique_and_bilingual_arithmetic_alternates():
    pairs = translations()
    assert len({en for en, _ in pairs}) == len(pairs) == len({zh for _, zh in pairs})
    mixed = load_task("arithmetic_bilingual", "test", n=6)
    english = load_task("arithmetic", "test", n=6)
    assert [e.answer for e in mixed] == [e.answer for e in english]
    assert [e.info["language"] for e in mixed] == ["en", "zh"] * 3

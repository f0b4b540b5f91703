"""Rejection sampling's pieces: the readability check, the keep/drop decision, the cold-start writers and
the judges."""

from __future__ import annotations

import random

import pytest

from r1kit.judges import RuleJudge, judge_prompt, parse_verdict
from r1kit.models.corpus import CorpusMix, addition_completion
from r1kit.rewards import VERIFIERS, extract_answer
from r1kit.sampling import readability_issues
from r1kit.sampling.cold_start import RuleRewriter, solver_completion
from r1kit.sampling.rejection import Filters, decide
from r1kit.tasks import load_task


@pytest.mark.parametrize(("completion", "language", "allow_code", "issues"), [
    ("<think>7+5=12, carry 1, then 4+8+1=13.</think> So 632. <answer>632</answer>", "en", False, []),
    ("<think>个位7+5=12，进1。</think> 答案是<answer>632</answer>", "zh", False, []),
    ("<think>个位7+5=12，wait, let me check the carries again</think> <answer>632</answer>", "zh", False,
     ["mixed_language"]),
    ("<think>" + "word " * 200 + "</think> done", "en", False, ["long_paragraph"]),
    ("<think>short.\n\nAnother short paragraph.</think> done", "en", False, []),
    ("<think>I will write code.</think> ```python\nprint(1)\n```", "en", False, ["code_block"]),
    ("<think>I will write code.</think> ```python\nprint(1)\n```", "en", True, []),
    ("<think>a</think> b <think>c</think> d", "en", False, ["format"]),
    ("<think>unclosed reasoning", "en", False, ["format"]),
    ("<think>reasoning</think>", "en", False, ["format"]),
    ("Hello! How can I help you today?", "en", False, []),
    ("", "en", False, ["format"]),
])
def test_readability_issues(completion, language, allow_code, issues):
    assert readability_issues(completion, language=language, allow_code=allow_code) == issues


def test_the_decision_counts_every_drop_reason():
    ok = "<think>2+2=4.</think> So 4. <answer>4</answer>"
    texts = [ok, "<answer>5</answer>", ok + " ", "<think>2+2=4, wait, 等等</think> <answer>4</answer>",
             "<think>2+2=4</think> 4 <answer>4</answer>", "<think>cut",
             "<think>2+2 is four.</think> 4 <answer>4</answer>"]
    d = decide(texts, [True, False, True, True, True, True, True], [True] * 5 + [False, True], language="en",
               allow_code=False, no_cot=False, filters=Filters(keep=2))
    assert [i for i, _ in d.kept] == [0, 4]
    assert dict(d.dropped) == {"incorrect": 1, "duplicate": 1, "mixed_language": 1, "runaway_length": 1,
                               "over_keep": 1}
    simple = decide(["<think>they greet me</think> Hello!"], [True], [True], language="en", allow_code=False,
                    no_cot=True, filters=Filters())
    assert simple.kept == [(0, "Hello!")]


@pytest.mark.parametrize("task", ["arithmetic", "arithmetic_zh", "countdown"])
def test_solver_traces_are_correct_readable_and_reflective(task):
    rng = random.Random(0)
    examples = load_task(task, "train", n=200)
    texts = [solver_completion(e, rng) for e in examples]
    for e, text in zip(examples, texts):
        assert text is not None and VERIFIERS[e.verifier](extract_answer(text), e.answer, e.info), text
        assert readability_issues(text, language=e.info.get("language")) == [], text
    reflective = sum(("wait" in t.lower()) or ("等等" in t) for t in texts)
    assert 0.2 * len(texts) < reflective  # reflection and verification are in the data by design


def test_the_rule_rewriter_keeps_a_recheck_and_writes_the_prompts_language():
    mix = CorpusMix(careful=0, check=1, direct=0, no_tags=0, trailing=0, switch_zh=1.0, switch_en=0)
    for task in ("arithmetic", "arithmetic_zh"):
        for e in load_task(task, "train", n=50):
            trace = addition_completion(e.info["a"], e.info["b"], e.info["language"], random.Random(0), mix)
            rewritten = RuleRewriter().rewrite(e, trace)
            if extract_answer(trace) != e.answer:
                assert rewritten is None
                continue
            assert rewritten is not None and extract_answer(rewritten) == e.answer
            assert readability_issues(rewritten, language=e.info["language"]) == []  # the switch is gone
            if "check" in trace:  # a trace that rechecked keeps a recheck
                assert "wait" in rewritten.lower() or "等等" in rewritten


def test_rule_judge_and_verdicts():
    judge = RuleJudge()
    assert judge.judge(["q"] * 4, ["<answer>632</answer>", "It is Zormel.", "Melvi", "anything"],
                       ["632", "Zormel", "Zormel", ""]) == [True, True, False, None]
    assert [parse_verdict(t) for t in ("yes", "No.", "是的", "不对", "correct", "hmm")] == [
        True, False, True, False, True, None]
    prompt = judge_prompt("347+285", "<think>7+5=12</think> <answer>632</answer>", "632")
    assert "Reference: 632" in prompt and "Answer: 632" in prompt and "7+5" not in prompt

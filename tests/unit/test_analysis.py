"""The analyses of `r1kit eval` and of training runs: "aha" samples (golden, hand-written completions),
difficulty levels of the synthetic tasks, per-word reflection over training steps, the report's sample
browser data."""

from __future__ import annotations

import json
import shutil

import pytest

from r1kit.evaluation.analysis import answer_candidate, find_aha, reflective_spans, row_ahas, summarize
from r1kit.evaluation.browser import browser_html, browser_samples, script_json
from r1kit.evaluation.plots import plot_reflection_by_word, plot_run
from r1kit.evaluation.protocol import run_metrics_log
from r1kit.evaluation.runner import EvalResult
from r1kit.evaluation.voting import same_answer
from r1kit.tasks import arithmetic, countdown

SAME_INT = same_answer("integer", {})

# (completion, graded answer, verdict) -> expected (word, before) or None
AHA_CASES = [
    # The embedded base's recheck: a dropped carry, "wait", the right sum.
    (" <think>7+5=12,4+8=12,3+2=5, so 522. wait, let me check the carries: 7+5=12,4+8+1=13,3+2+1=6, so 632."
     "</think> <answer>632</answer>", "632", True, ("wait", "522")),
    # An answer tag before the reflection is the candidate, over the numbers after it.
    ("<answer>41</answer> Hmm, 6*7 is 42 actually. <answer>42</answer>", "42", True, ("hmm", "41")),
    # Chinese reflection.
    (" <think>3+4=8。等等，3+4=7。</think> <answer>7</answer>", "7", True, ("等等", "8")),
    # Reflection without a change: verified, same answer.
    (" <think>2+3=5. Let me verify: 5-3=2, yes.</think> <answer>5</answer>", "5", True, None),
    # Changed, but to a wrong answer.
    (" <think>so 522. wait, so 623.</think> <answer>623</answer>", "623", False, None),
    # Changed and correct, but no reflective word: a plain correction is not an aha.
    (" <think>so 522. so 632.</think> <answer>632</answer>", "632", True, None),
    # Reflection with nothing stated before it.
    (" <think>Wait, 7+5=12, so 12.</think> <answer>12</answer>", "12", True, None),
    # Reflection after the final answer finds that answer before it.
    ("<answer>632</answer> wait, is that right?", "632", True, None),
    # No answer graded.
    (" <think>so 5. wait, so 6.</think>", None, False, None),
]


@pytest.mark.parametrize(("completion", "final", "correct", "expected"), AHA_CASES)
def test_find_aha_golden(completion, final, correct, expected):
    aha = find_aha(completion, final=final, correct=correct, same=SAME_INT)
    assert (aha.word, aha.before) == expected if expected else aha is None
    if aha is not None:
        assert aha.after == final
        assert completion[aha.offset:aha.offset + len(aha.word)].lower() == aha.word


def test_an_equivalent_answer_is_no_change():
    same_math = same_answer("math", {})
    text = r"so x = \boxed{0.5}. Wait, as a fraction: <answer>1/2</answer>"
    assert find_aha(text, final="1/2", correct=True, same=same_math) is None
    assert find_aha(text, final="1/2", correct=True, same=lambda a, b: a == b) is not None  # text differs


def test_answer_candidate_prefers_tags_then_boxes_then_numbers():
    assert answer_candidate("<answer>7</answer> then 9") == "7"
    assert answer_candidate(r"\boxed{3/4} then 9") == "3/4"
    assert answer_candidate("x is -2.5, then") == "-2.5"
    assert answer_candidate("no numbers here") is None


def test_reflective_spans_match_reflective_counts_case_insensitively():
    text = "WAIT. But re-check 等等, waiting is no word"
    assert reflective_spans(text) == [(0, "wait"), (6, "but"), (10, "re-check"), (19, "等等")]


def _row(task, completions, extracted, correct, index=0, verifier="integer"):
    return {"task": task, "index": index, "prompt": f"question {index}", "answer": "632", "verifier": verifier,
            "info": {}, "completions": completions, "extracted": extracted, "correct": correct,
            "tokens": [len(c) for c in completions]}


AHA = " <think>so 522. wait, so 632.</think> <answer>632</answer>"


def test_summarize_counts_aha_samples():
    rows = [_row("t", [AHA, "<answer>632</answer>", "<answer>5</answer>"], ["632", "632", "5"], [1, 1, 0]),
            _row("t", [AHA], ["632"], [0], index=1)]  # graded wrong: no aha however it reads
    assert [a is not None for a in row_ahas(rows[0])] == [True, False, False]
    assert summarize(rows, count_tokens=len)["aha"] == {"count": 1, "share": 0.25}


def test_bare_numbers_are_candidate_answers_only_for_numeric_verifiers():
    work = " <think>3+5=8, 8*4=32. wait, 32-8=24</think> <answer>(3+5)*4-8</answer>"
    row = _row("countdown", [work], ["(3+5)*4-8"], [1], verifier="countdown")
    assert row_ahas(row) == [None]  # "32" was arithmetic on the way, not an answer it changed
    assert row_ahas({**row, "verifier": "integer", "extracted": ["24"]})[0] is not None
    assert answer_candidate("so 8, then 32", numbers=False) is None


def test_synthetic_tasks_carry_difficulty_levels():
    assert arithmetic.make_example(347, 285).info["level"] == 2  # 7+5 and 4+8+1 carry
    assert arithmetic.make_example(123, 456, "zh").info["level"] == 0
    assert arithmetic.make_example(999, 101).info["level"] == 3
    levels = {e.info["level"] for e in arithmetic.load("test", n=200)}
    assert levels == {0, 1, 2, 3}
    pool = countdown.load("test", n=50)
    assert {e.info["level"] for e in pool} == {3, 4}
    assert all(e.info["level"] == len(e.info["numbers"]) for e in pool)


def test_thinking_tokens_by_level_of_synthetic_rows():
    examples = arithmetic.load("test", n=40)
    rows = [{"completions": [f"<think>{'x' * (10 * e.info['level'] + 1)}</think>"], "tokens": [1],
             "info": e.info, "verifier": "integer", "extracted": [None], "correct": [0]} for e in examples]
    by_level = summarize(rows, count_tokens=len)["thinking_tokens_by_level"]
    assert by_level == {"0": 1.0, "1": 11.0, "2": 21.0, "3": 31.0}


def test_eval_metrics_log_each_reflective_word_per_response():
    result = EvalResult(pass_at_1=0.5, pass_at_k={1: 0.5}, format_rate=1.0, mean_response_tokens=10.0, n_prompts=1,
                        k=2, completions=[], correct=[], reflective_words=1.5,
                        reflective_per_word={"wait": 1.0, "check": 0.5})
    metrics = result.metrics()
    assert metrics["eval/reflective_words/wait"] == 1.0 and metrics["eval/reflective_words/check"] == 0.5


def _training_rows():
    return [{"step": s, "reward/mean": 0.1 * s, "eval/pass@1": 0.2 + 0.01 * s, "eval/reflective_words": 0.05 * s,
             "eval/reflective_words/wait": 0.04 * s, "eval/reflective_words/等等": 0.01 * s,
             "eval/reflective_words/but": 0.0} for s in (0, 10, 20)]


def test_plot_run_draws_reflective_words_by_word(tmp_path):
    paths = plot_run(_training_rows(), tmp_path / "plots")
    assert tmp_path / "plots" / "reflective_words_by_word.png" in paths
    assert (tmp_path / "plots" / "reflective_words_by_word.png").read_bytes()[:4] == b"\x89PNG"
    assert plot_reflection_by_word([{"step": 1, "reward/mean": 0.0}], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_run_metrics_log_is_found_beside_the_model(tmp_path):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    assert run_metrics_log(str(run / "model")) is None
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _training_rows()))
    assert run_metrics_log(str(run / "model")) == run / "metrics.jsonl"
    assert run_metrics_log(str(run)) == run / "metrics.jsonl"
    assert run_metrics_log("embedded") is None
    shutil.rmtree(run / "model")
    assert run_metrics_log(str(run / "model")) is None


def test_browser_keeps_aha_first_then_wrong_and_correct_alternately():
    completions = [AHA] + ["<answer>632</answer>"] * 5 + ["<answer>1</answer>"] * 2
    row = _row("t", completions, ["632"] * 6 + ["1"] * 2, [1] * 6 + [0] * 2)
    chosen = browser_samples([row], cap=4)
    assert [s["sample"] for s in chosen] == [0, 1, 6, 7]  # the aha, then wrong/correct pairs, in order
    assert chosen[0]["aha"] == {"word": "wait", "before": "522", "after": "632", "offset": 16, "length": 4}
    assert len(browser_samples([row], cap=100)) == 8


def test_browser_offsets_are_javascript_string_offsets():
    text = "😀 so 1. wait, so 2. <answer>2</answer>"
    row = _row("t", [text], ["2"], [1])
    aha = browser_samples([row])[0]["aha"]
    utf16 = text.encode("utf-16-le")
    assert utf16[2 * aha["offset"]:2 * (aha["offset"] + aha["length"])].decode("utf-16-le") == "wait"


def test_embedded_json_cannot_close_its_script_block():
    hostile = "</script><script>alert(1)</script><!-- &amp;"
    block = script_json({"c": hostile})
    assert "<" not in block and ">" not in block and "&" not in block
    assert json.loads(block) == {"c": hostile}
    page = browser_html({"t": [_row("t", [hostile], [None], [0])]})
    assert page.count("</script>") == 2  # the JSON block's and the script's own


def test_report_shows_training_reflection_when_given_a_run_log(tmp_path):
    from r1kit.evaluation.report import write_report

    rows = [_row("t", [AHA, "x"], ["632", None], [1, 0])]
    tasks = {"t": {"pass@1": 0.5, "pass@1_ci95": [0.4, 0.6], "cons@k": 0.5, "cons@2_ci95": [0.4, 0.6],
                   "pass@k": {"1": 0.5, "2": 0.6}, "format_rate": 1.0, "mean_response_tokens": 9.0,
                   "n_prompts": 1, "k": 2, "analyses": summarize(rows, count_tokens=len)}}
    results = {"tasks": tasks, "overall": {**tasks["t"]}, "protocol": {"k": 2}}
    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in _training_rows()) + '{"step": 30, "eval/')  # cut line
    page = write_report(tmp_path / "ev", results, None, rows_by_task={"t": rows}, run_log=log).read_text()
    assert (tmp_path / "ev" / "plots" / "training_reflective_words.png").is_file()
    assert 'alt="training_reflective_words.png"' in page and str(log) in page
    assert 'id="sample-data"' in page
    no_log = write_report(tmp_path / "ev2", results, None).read_text()
    assert "training_reflective_words" not in no_log and 'id="sample-data"' not in no_log

"""Preference pairs: written candidates obey (or break) the gold rules, labels come from the gold, the
noise and the spurious feature are there on purpose in the training pairs and absent from the gold
pairs, and `r1kit preferences` writes the same files on every run."""

from __future__ import annotations

import json
import random

import pytest

from r1kit.cli import main
from r1kit.rewards.general import summary
from r1kit.sampling.preferences import (
    HARMLESS_TASKS,
    HELPFUL_TASKS,
    SIGN_OFF,
    PairSettings,
    bad_responses,
    candidates_for,
    good_response,
    harmless,
    helpful,
    pairs_for,
)
from r1kit.tasks import load_task


@pytest.mark.parametrize("task", [*HELPFUL_TASKS, *HARMLESS_TASKS])
def test_written_candidates_obey_or_break_the_gold_rule(task):
    gold = harmless if task in HARMLESS_TASKS else helpful
    rng = random.Random(0)
    examples = load_task(task, "train", seed=0)[:60]
    good = [gold(e, good_response(e, rng)) for e in examples]
    assert sum(good) / len(good) >= 0.9  # writing: a few multi-word topics miscount ("the sea")
    for e in examples:
        assert not any(gold(e, r) for r in bad_responses(e, rng)[:1]), e.prompt  # the rambling one at least


def test_labels_come_from_the_gold_and_only_noise_flips_them():
    rng = random.Random(1)
    rows = []
    for e in load_task("factual_qa", "train", seed=0)[:80]:
        rows += pairs_for(e, helpful, candidates_for(e, rng), rng, PairSettings(noise=0.25), view=summary)
    assert all(r["chosen_gold"] != r["flipped"] and r["rejected_gold"] == r["flipped"] for r in rows)
    assert 0.1 < sum(r["flipped"] for r in rows) / len(rows) < 0.4
    assert all("<think>" not in r["chosen"] + r["rejected"] for r in rows)  # the summary view
    chosen = sum(r["chosen_spurious"] for r in rows if not r["flipped"])
    rejected = sum(r["rejected_spurious"] for r in rows if not r["flipped"])
    assert chosen > 2 * rejected  # the spurious feature goes with "chosen"
    assert any(r["chosen"].endswith(SIGN_OFF["en"]) for r in rows)


def test_gold_pairs_have_no_noise_and_no_spurious_feature():
    rng = random.Random(2)
    for task, gold in (("writing", helpful), ("harmful", harmless)):
        for e in load_task(task, "test")[:20]:
            for r in pairs_for(e, gold, candidates_for(e, rng), rng, PairSettings(noise=0.5), clean=True):
                assert r["chosen_gold"] and not r["rejected_gold"] and not r["flipped"]
                assert not r["chosen_spurious"] and not r["rejected_spurious"]


def test_the_command_writes_every_file_the_same_way_twice(tmp_path, capsys):
    out = tmp_path / "prefs"
    assert main(["preferences", f"out_dir={out}", "prompts_per_task=20", "--quiet"]) == 0
    files = ["helpful.jsonl", "harmless.jsonl", "helpful_gold.jsonl", "harmless_gold.jsonl", "sft.jsonl"]
    first = {f: (out / f).read_text() for f in files}
    assert all(first.values()) and (out / "plots" / "pairs.png").is_file()
    report = json.loads((out / "summary.json").read_text())
    assert report["helpful"]["pairs"] == len(first["helpful.jsonl"].splitlines())
    assert set(report["helpful"]["by_task"]) == set(HELPFUL_TASKS)
    sft = [json.loads(line) for line in first["sft.jsonl"].splitlines()]
    assert report["sft"]["rows"] == len(sft) >= 100
    assert all(r["messages"][-1]["role"] == "assistant" for r in sft)
    assert {r["task"] for r in sft} == {*HELPFUL_TASKS, *HARMLESS_TASKS}
    assert main(["preferences", f"out_dir={out}", "prompts_per_task=20", "--quiet"]) == 0
    assert {f: (out / f).read_text() for f in files} == first


@pytest.mark.parametrize(("args", "message"), [
    (["noise=2"], "config key 'noise' must be in [0, 1], got 2"),
    (["helpful_tasks=arithmetic"], "helpful_tasks: 'arithmetic' is not a general task"),
])
def test_bad_settings_are_one_line_before_any_work(tmp_path, capsys, args, message):
    out = tmp_path / "prefs"
    assert main(["preferences", f"out_dir={out}", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("r1kit: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()

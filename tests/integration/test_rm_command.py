"""`r1kit rm` end to end on a tiny random model: it learns a preference, writes a model that loads with
AutoModelForSequenceClassification, resumes exactly after SIGKILL, and refuses bad pairs with one line
before touching out_dir."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.integration.test_sft_command import _kill_after_step, _rows

from r1kit.cli import main


def _write_pairs(path: Path, n: int = 160) -> Path:
    # The preference is the correct sum; the wrong one differs from it in one digit.
    rng = random.Random(0)
    with open(path, "w") as f:
        for _ in range(n):
            a, b = rng.randint(10, 49), rng.randint(10, 49)
            f.write(json.dumps({"prompt": f"{a}+{b}=", "chosen": f"{a + b} ok", "rejected": f"{a + b} no"}) + "\n")
    return path


def _args(model: Path, data: Path, out: Path) -> list[str]:
    return [f"model.path={model}", f"data={data}", f"out_dir={out}", "epochs=2", "batch_size=16", "max_length=64",
            "eval_every=3", "save_every=1", "threads=1", "optim.lr=3e-3", "template=plain", f"eval_data={data}",
            "--quiet"]


def test_rm_learns_loads_as_a_classifier_and_resumes_exactly_after_sigkill(tmp_path, tiny_random_model):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    data = _write_pairs(tmp_path / "pairs.jsonl")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    cmd = [sys.executable, "-m", "r1kit.cli", "rm"]
    done = subprocess.run([*cmd, *_args(tiny_random_model, data, straight)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads((straight / "summary.json").read_text())
    assert summary["steps"] == 2 * 9 and summary["heldout_pairs"] == 16
    assert summary["accuracy_after"] >= 0.9 and summary["margin_after"] > 0
    assert {"reward_mean", "reward_std"} <= set(summary) and summary["reward_std"] > 0
    assert summary["eval_data_pairs"] == 160 and summary["eval_data_accuracy"] >= 0.9
    assert (straight / "plots" / "accuracy.png").is_file() and (straight / "plots" / "loss.png").is_file()
    info = json.loads((straight / "model" / "r1kit_reward.json").read_text())
    assert info["template"] == "plain" and info["reward_mean"] == summary["reward_mean"]

    # Plain transformers reads it back: the score of the last token, chosen above rejected.
    model = AutoModelForSequenceClassification.from_pretrained(straight / "model", num_labels=1).eval()
    tok = AutoTokenizer.from_pretrained(straight / "model")
    ids = [tok("30+12=42 ok", add_special_tokens=False)["input_ids"] + [tok.eos_token_id],
           tok("30+12=42 no", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]]
    with torch.no_grad():
        scores = model(input_ids=torch.tensor(ids)).logits.squeeze(-1)
    assert scores[0] > scores[1]

    _kill_after_step([*cmd, *_args(tiny_random_model, data, killed)], killed, 5)
    resumed = subprocess.run([*cmd, *_args(tiny_random_model, data, killed)], capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert _rows(killed) == _rows(straight)
    a, b = load_file(straight / "model" / "model.safetensors"), load_file(killed / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(("rows", "message"), [
    ([{"prompt": "q", "chosen": "same", "rejected": "same"}], "pairs.jsonl:1: chosen == rejected"),
    ([{"prompt": "q", "chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": "a"}],
     "pairs.jsonl:2: a preference row needs string 'prompt', 'chosen' and 'rejected'"),
    ([{"prompt": "q", "chosen": "a", "rejected": "b", "margin": "big"}], "pairs.jsonl:1: 'margin' must be a number"),
])
def test_bad_pairs_are_one_line_before_any_work(tmp_path, tiny_random_model, capsys, rows, message):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    assert main(["rm", f"model.path={tiny_random_model}", f"data={data}", f"out_dir={out}", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("r1kit: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_missing_data_and_a_non_reward_model_are_one_line(tmp_path, tiny_random_model, capsys):
    assert main(["rm", f"model.path={tiny_random_model}", f"data={tmp_path / 'none.jsonl'}",
                 f"out_dir={tmp_path / 'a'}", "--quiet"]) == 2
    assert "none.jsonl" in capsys.readouterr().err and not (tmp_path / "a").exists()

"""`r1kit dpo` end to end on a tiny random model: the loss falls and the held-out reward accuracy rises, it
resumes exactly after SIGKILL, LoRA runs with no frozen copy, and bad input is one line before out_dir."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from tests.integration.test_rm_command import _write_pairs
from tests.integration.test_sft_command import _kill_after_step, _rows

from r1kit.cli import main


def _args(model, data, out, *extra: str) -> list[str]:
    return [f"model.path={model}", f"data={data}", f"out_dir={out}", "epochs=2", "batch_size=16", "max_length=64",
            "eval_every=3", "save_every=1", "threads=1", "optim.lr=1e-3", "template=plain", "dpo.beta=0.1",
            *extra, "--quiet"]


def test_dpo_learns_and_resumes_exactly_after_sigkill(tmp_path, tiny_random_model):
    data = _write_pairs(tmp_path / "pairs.jsonl")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    cmd = [sys.executable, "-m", "r1kit.cli", "dpo"]
    done = subprocess.run([*cmd, *_args(tiny_random_model, data, straight)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads((straight / "summary.json").read_text())
    assert summary["steps"] == 2 * 9 and summary["heldout_pairs"] == 16 and summary["train_pairs"] == 144
    assert summary["accuracy_before"] == 0.0  # policy = reference: every implicit reward is 0, a tie
    assert summary["accuracy_after"] >= 0.9 and summary["margin_after"] > 0
    assert summary["loss_last"] < summary["loss_first"] - 0.1
    assert summary["eval_loss_after"] < summary["eval_loss_before"]
    rows = _rows(straight)
    assert {"loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "grad_norm",
            "lr"} <= set(rows[1])
    assert [r["step"] for r in rows if "eval/rewards/accuracies" in r] == [0, 3, 6, 9, 12, 15, 18]
    assert (straight / "plots" / "accuracy.png").is_file() and (straight / "model" / "config.json").is_file()

    _kill_after_step([*cmd, *_args(tiny_random_model, data, killed)], killed, 5)
    resumed = subprocess.run([*cmd, *_args(tiny_random_model, data, killed)], capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert _rows(killed) == rows
    a, b = load_file(straight / "model" / "model.safetensors"), load_file(killed / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_lora_uses_the_policy_with_adapters_off_as_reference(tmp_path, tiny_random_model, monkeypatch):
    pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    import r1kit.models.loading as loading
    import r1kit.stages.dpo as stage

    loads = []
    real_load = loading.load_model
    for module in (loading, stage):  # the policy's load (r1kit.models.lora) and a reference's (the stage)
        monkeypatch.setattr(module, "load_model", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    data = _write_pairs(tmp_path / "pairs.jsonl")
    out = tmp_path / "lora"
    assert main(["dpo", *_args(tiny_random_model, data, out, "model.lora.rank=8", "optim.lr=1e-3", "epochs=1")]) == 0
    assert loads == [str(tiny_random_model)]  # the policy only: no second copy for the reference
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy_after"] >= 0.75 and summary["margin_after"] > 0
    AutoModelForCausalLM.from_pretrained(out / "model")  # merged: plain transformers loads it


@pytest.mark.parametrize(("extra", "message"), [
    (["dpo.beta=0"], "config key 'dpo.beta' must be > 0, got 0"),
    (["dpo.beta=-0.1"], "config key 'dpo.beta' must be > 0"),
    (["dpo.label_smoothing=0.5"], "config key 'dpo.label_smoothing' must be in [0, 0.5)"),
    (["data=MISSING"], "missing.jsonl"),
])
def test_bad_input_is_one_line_before_any_work(tmp_path, tiny_random_model, capsys, extra, message):
    data = _write_pairs(tmp_path / "pairs.jsonl", n=8)
    extra = [e.replace("MISSING", str(tmp_path / "missing.jsonl")) for e in extra]
    out = tmp_path / "run"
    assert main(["dpo", f"model.path={tiny_random_model}", f"data={data}", f"out_dir={out}", *extra, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("r1kit: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_a_bad_pair_names_its_row(tmp_path, tiny_random_model, capsys):
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n" +
                    json.dumps({"prompt": "q", "chosen": "same", "rejected": "same"}) + "\n")
    out = tmp_path / "run"
    assert main(["dpo", f"model.path={tiny_random_model}", f"data={data}", f"out_dir={out}", "--quiet"]) == 2
    assert "pairs.jsonl:2: chosen == rejected" in capsys.readouterr().err and not out.exists()

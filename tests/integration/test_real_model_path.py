"""The same `r1kit zero` on a Hugging Face model directory (a tiny random Qwen2 stands in for
Qwen2.5-0.5B) with GSM8K from local files, through the R1-Zero template and the chat template."""

from __future__ import annotations

import json
import shutil

import pytest
from tests.conftest import REPO
from transformers import AutoModelForCausalLM

from r1kit.cli import main


@pytest.mark.parametrize("template", ["r1_zero", "chat"])
def test_zero_trains_a_qwen2_directory_on_gsm8k(tmp_path, tiny_random_model, shared_data, template, capsys):
    out_dir = tmp_path / "run"
    code = main([
        "zero", "--config", str(REPO / "recipes/qwen2.5-0.5b/zero-gsm8k.yaml"), f"out_dir={out_dir}",
        f"model.path={tiny_random_model}", "model.dtype=float32", f"task.path={shared_data / 'gsm8k'}",
        f"task.template={template}", "steps=2", "prompts_per_step=2", "group_size=2", "task.eval_size=2",
        "eval.samples=2", "rollout.max_new_tokens=8", "eval.max_new_tokens=8", "grpo.num_minibatches=2",
        "optim.micro_batch_size=1", "save_every=1", "threads=1",
    ])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["steps"] == 2 and set(summary["before"]) >= {"pass@1", "format_rate", "mean_response_tokens"}
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    model = AutoModelForCausalLM.from_pretrained(out_dir / "model")
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert (out_dir / "plots/accuracy.png").stat().st_size > 0


def test_chat_template_needs_a_tokenizer_that_has_one(tmp_path, tiny_random_model, capsys):
    # A base model's tokenizer without a chat template: asking for one is a clear error, before any work.
    bare = tmp_path / "bare"
    shutil.copytree(tiny_random_model, bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))
    code = main(["zero", f"out_dir={tmp_path / 'run'}", f"model.path={bare}", "task.template=chat"])
    assert code == 2
    assert "needs a tokenizer with a chat template" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()

"""The real-model path on the CPU: --dry-run, LoRA runs that resume exactly, the GPU check's smoke test, and
one-line refusals of settings this machine or stage cannot run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from r1kit import rewards
from r1kit.cli import main
from r1kit.stages.grpo import TIMING_KEYS

REPO = Path(__file__).resolve().parents[2]
SMALL = ["prompts_per_step=2", "group_size=2", "task.eval_size=4", "eval.samples=1", "rollout.max_new_tokens=8",
         "eval.max_new_tokens=8", "threads=1"]


def test_dry_run_on_the_embedded_model_writes_nothing(tmp_path, capsys):
    assert main(["zero", "--dry-run", f"out_dir={tmp_path / 'run'}", "task.eval_size=4"]) == 0
    out = capsys.readouterr().out
    assert "nothing trained, nothing written" in out and "train micro-batch" in out and "AdamW moments" in out
    assert not (tmp_path / "run").exists()


def test_dry_run_on_a_tiny_random_model_with_lora_and_packing(tmp_path, tiny_random_model, capsys):
    args = ["zero", "--dry-run", f"out_dir={tmp_path / 'run'}", f"model.path={tiny_random_model}",
            "model.lora.rank=4", "optim.max_tokens_per_micro_batch=1024", "optim.micro_batch_size=4", *SMALL]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "LoRA rank 4" in out and "none: the LoRA model with its adapters disabled" in out
    assert not (tmp_path / "run").exists()


def _rows(out_dir: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
            for line in (out_dir / "metrics.jsonl").read_text().splitlines()]


def _digit_reward(prompts, completions, **_):  # variance inside every group, even from a random model
    return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]


def test_a_lora_run_with_reference_refreshes_resumes_exactly_and_exports_a_merged_model(tmp_path, tiny_random_model,
                                                                                        monkeypatch):
    monkeypatch.setitem(rewards.REWARDS, "digits", _digit_reward)
    common = ["zero", f"model.path={tiny_random_model}", "model.lora.rank=4", "grpo.ref_update_every=2",
              "rewards={digits: 1.0}", "group_size=4",
              "grpo.kl_coef=0.1", "save_every=1", "optim.lr=1e-3", "eval.every=2", *SMALL]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main([*common, f"out_dir={straight}", "steps=4", "--quiet"]) == 0
    assert main([*common, f"out_dir={resumed}", "steps=2", "--quiet"]) == 0  # refreshed at 2: the base is saved
    assert (resumed / "checkpoints" / "step_000002" / "policy" / "base_model.safetensors").is_file()
    assert main([*common, f"out_dir={resumed}", "steps=4", "--quiet"]) == 0
    assert _rows(resumed) == _rows(straight)
    kl = [r.get("kl") for r in _rows(straight)]  # rows: the step-0 evaluation, then steps 1-4
    assert kl[2] > 0 and kl[4] > 0  # the adapters moved away from the reference
    assert abs(kl[3]) < 1e-6  # step 3 starts from the refresh after step 2: the reference is the policy
    a, b = load_file(straight / "model" / "model.safetensors"), load_file(resumed / "model" / "model.safetensors")
    assert a.keys() == b.keys() and not any("lora" in k for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    model = AutoModelForCausalLM.from_pretrained(straight / "model")  # merged: plain transformers loads it
    original = AutoModelForCausalLM.from_pretrained(tiny_random_model)
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), original.parameters()))


@pytest.mark.parametrize(("override", "message"), [
    ("rollout.engine=vllm", "rollout.engine=vllm needs vLLM: pip install 'r1kit[vllm]'"),
    ("model.logprob_chunk_tokens=-1", "'model.logprob_chunk_tokens' must be >= 0"),
    ("optim.max_tokens_per_micro_batch=-5", "'optim.max_tokens_per_micro_batch' must be >= 0"),
    ("rollout.gpu_memory_utilization=1.5", "'rollout.gpu_memory_utilization' must be in (0, 1]"),
    ("optim.max_tokens_per_micro_batch=64", "optim.max_tokens_per_micro_batch=64 cannot hold the longest prompt"),
])
def test_bad_one_gpu_settings_fail_in_one_line(tmp_path, capsys, override, message):
    assert main(["zero", f"out_dir={tmp_path / 'run'}", override]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_lora_is_refused_by_stages_that_train_every_weight(tmp_path, capsys):
    assert main(["sft", f"out_dir={tmp_path / 'run'}", "model.lora.rank=8"]) == 2
    assert "LoRA is wired into the GRPO stages" in capsys.readouterr().err


def test_gpu_check_runs_on_the_cpu_as_a_smoke_test(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks/gpu_check.py")
    assert spec and spec.loader
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    out = tmp_path / "gpu_check.json"
    gpu_check.main(["--smoke", "--skip-continuous-batching", "--out", str(out)])
    phases = json.loads(out.read_text())["phases"]
    names = ["0_ceiling", "1_rollout/tiny", "2_logprob_parity/tiny", "3_train_step/tiny", "4_offload/tiny"]
    for name in names:
        assert "error" not in phases[name], phases[name]
    rollout = phases["1_rollout/tiny"]
    assert rollout["fixed"]["r1kit_hf"]["tokens"] == rollout["fixed"]["hf_generate"]["tokens"] == 4 * 2 * 8
    assert phases["2_logprob_parity/tiny"]["max_abs"] < 0.1
    assert phases["3_train_step/tiny"]["chunked"]["tokens_per_s"] > 0
    assert set(phases["4_offload/tiny"]) == {"reference", "optimizer"}


@pytest.mark.parametrize("recipe", ["qwen2.5-0.5b/zero-gsm8k.yaml", "qwen2.5-1.5b/zero-gsm8k.yaml",
                                    "qwen2.5-1.5b/zero-gsm8k-lora.yaml"])
def test_each_real_model_recipe_dry_runs_on_a_tiny_stand_in(tmp_path, tiny_random_model, shared_data, recipe, capsys):
    """Every key of the recipe is live (packing, chunking, LoRA, offload), on the tiny model in its place."""
    args = ["zero", "--config", str(REPO / "recipes" / recipe), "--dry-run", f"out_dir={tmp_path / 'run'}",
            f"model.path={tiny_random_model}", "model.device=cpu", f"task.path={shared_data / 'gsm8k'}",
            "task.eval_size=2", "rollout.max_new_tokens=8", "optim.micro_batch_size=8", "threads=1"]
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "bfloat16 compute" in out and ("LoRA rank 16" in out) == recipe.endswith("lora.yaml")
    assert not (tmp_path / "run").exists()

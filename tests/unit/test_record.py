"""A run directory refuses to continue under settings that change results, allows the safe ones, and
keeps every invocation."""

from __future__ import annotations

import json

import pytest

from r1kit.config import ConfigError, ZeroConfig, load_config
from r1kit.stages.grpo import steps_derived
from r1kit.trainers.record import INVOCATIONS, check_resume, fingerprint, record_invocation


def _record(tmp_path, *overrides: str) -> ZeroConfig:
    cfg = load_config(ZeroConfig, None, [f"out_dir={tmp_path}", *overrides])
    record_invocation(tmp_path, cfg, resumed_from=0, changed=[])
    return cfg


def _check(tmp_path, *overrides: str) -> list[str]:
    cfg = load_config(ZeroConfig, None, [f"out_dir={tmp_path}", *overrides])
    return check_resume(tmp_path, cfg, steps_derived=steps_derived)


def test_a_new_directory_and_the_same_settings_resume(tmp_path):
    assert _check(tmp_path / "new") == []
    _record(tmp_path, "steps=4", "optim.lr=1e-3")
    assert _check(tmp_path, "steps=4", "optim.lr=0.001") == []


def test_a_result_changing_key_is_refused_by_name(tmp_path):
    _record(tmp_path, "steps=2")
    with pytest.raises(ConfigError) as e:
        _check(tmp_path, "steps=4", "optim.lr=1e-2", "rewards={accuracy: 1}")
    message = str(e.value)
    differing = message.split(" settings: ")[1].split(";")[0]
    assert differing == "optim.lr 5e-05 -> 0.01, rewards.format 0.2 -> '<unset>'"  # steps 2 -> 4 is allowed
    assert "\n" not in message


def test_safe_keys_and_a_higher_constant_schedule_are_allowed(tmp_path):
    _record(tmp_path, "steps=2")
    allowed = _check(tmp_path, "steps=8", "threads=1", "eval.every=5", "logging.tensorboard=true",
                     "save_every=1", "keep_checkpoints=3", "model.device=cpu")
    assert allowed == ["eval.every", "keep_checkpoints", "logging.tensorboard", "model.device", "save_every",
                       "steps", "threads"]


def test_steps_is_refused_when_the_schedule_derives_from_it_or_when_lowered(tmp_path):
    _record(tmp_path, "steps=4", "optim.schedule=cosine")
    with pytest.raises(ConfigError, match=r"steps 4 -> 8 \(optim.schedule=cosine\)"):
        _check(tmp_path, "steps=8", "optim.schedule=cosine")
    _record(tmp_path, "steps=4")
    with pytest.raises(ConfigError, match=r"steps 4 -> 3 \(lowered\)"):
        _check(tmp_path, "steps=3")


def test_invocations_are_appended_never_rewritten(tmp_path):
    _record(tmp_path, "steps=2")
    cfg = load_config(ZeroConfig, None, [f"out_dir={tmp_path}", "steps=6"])
    record_invocation(tmp_path, cfg, resumed_from=2, changed=["steps"])
    rows = [json.loads(line) for line in (tmp_path / INVOCATIONS).read_text().splitlines()]
    assert [(r["resumed_from_step"], r["changed"], r["config"]["steps"]) for r in rows] == [
        (0, [], 2), (2, ["steps"], 6)]
    assert rows[0]["fingerprint"] == rows[1]["fingerprint"] == fingerprint(cfg)


def test_a_run_made_before_invocations_were_kept_is_read_from_config_yaml(tmp_path):
    import yaml

    old = {"out_dir": str(tmp_path), "steps": 2, "optim": {"lr": 5e-5}}  # keys added later hold defaults
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    assert _check(tmp_path, "steps=2") == []
    with pytest.raises(ConfigError, match=r"model\.dtype 'float32' -> 'bfloat16'"):
        _check(tmp_path, "steps=2", "model.dtype=bfloat16")

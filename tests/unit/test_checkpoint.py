"""Checkpoints are atomic and verified, resume falls back past a damaged one, and the metrics log survives
a kill mid-line."""

from __future__ import annotations

import pytest
import torch

from r1kit.config import ZeroConfig
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.trainers.checkpoint import (
    CheckpointError,
    MetricsLog,
    latest_checkpoint,
    resume_checkpoint,
    save_checkpoint,
)
from r1kit.trainers.grpo import make_optimizer


def test_latest_points_at_a_complete_checkpoint_and_old_ones_are_pruned(tmp_path, tiny_random_model):
    model, tok = load_model(str(tiny_random_model)), load_tokenizer(str(tiny_random_model))
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, model, tok, {"step": step}, keep=2)
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.step == 3 and ckpt.load_state() == {"step": 3}
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step_000002", "step_000003"]
    reloaded = load_model(str(ckpt.policy_dir))
    for a, b in zip(model.parameters(), reloaded.parameters()):
        assert torch.equal(a, b)


def test_a_half_written_checkpoint_is_ignored(tmp_path, tiny_random_model):
    model, tok = load_model(str(tiny_random_model)), load_tokenizer(str(tiny_random_model))
    save_checkpoint(tmp_path, 5, model, tok, {"step": 5})
    # A kill during the next save leaves a temporary directory and an unmoved pointer.
    partial = tmp_path / "checkpoints" / ".tmp-step_000006"
    partial.mkdir()
    (partial / "trainer_state.pt").write_bytes(b"\x00garbage")
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.step == 5
    save_checkpoint(tmp_path, 6, model, tok, {"step": 6})
    assert not partial.exists() or (tmp_path / "checkpoints" / "step_000006").exists()
    assert latest_checkpoint(tmp_path).step == 6


def test_no_checkpoint_means_a_fresh_start(tmp_path):
    assert latest_checkpoint(tmp_path) is None


def test_metrics_log_drops_a_cut_line_and_rows_past_the_checkpoint(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.extend({"step": s, "x": s * 1.5} for s in range(4))
    with open(log.path, "a") as f:
        f.write('{"step": 4, "x": 6.')  # killed mid-write
    assert [r["step"] for r in log.rows()] == [0, 1, 2, 3]
    log.truncate(2)
    assert [r["step"] for r in log.rows()] == [0, 1, 2]
    assert log.path.read_text().endswith("\n")


def _saved(tmp_path, tiny_random_model, steps):
    model, tok = load_model(str(tiny_random_model)), load_tokenizer(str(tiny_random_model))
    return [save_checkpoint(tmp_path, s, model, tok, {"step": s}, keep=len(steps)) for s in steps]


def test_every_kind_of_damage_is_named(tmp_path, tiny_random_model):
    ckpt = _saved(tmp_path, tiny_random_model, [1])[0]
    assert ckpt.damage() == ""
    weights = ckpt.policy_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, one flipped byte: only the checksum sees it
    weights.write_bytes(bytes(data))
    assert ckpt.damage() == "policy/model.safetensors does not match its checksum"
    weights.write_bytes(bytes(data[:100]))
    assert ckpt.damage().startswith("policy/model.safetensors has 100 bytes, the manifest says")
    weights.unlink()
    assert ckpt.damage() == "policy/model.safetensors is missing"
    (ckpt.path / "manifest.json").unlink()
    assert ckpt.damage() == "no manifest.json"
    assert latest_checkpoint(tmp_path) is None


def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path, tiny_random_model):
    _, second, third = _saved(tmp_path, tiny_random_model, [2, 4, 6])
    (third.path / "trainer_state.pt").write_bytes(b"\x00cut")
    warnings: list[str] = []
    found = resume_checkpoint(tmp_path, lambda c: c.load_state(), warnings.append)
    assert found is not None and found[0] == second and found[1] == {"step": 4}
    assert len(warnings) == 1 and "step_000006 is damaged" in warnings[0] and "trying the previous one" in warnings[0]


def test_a_checkpoint_that_verifies_but_does_not_load_counts_as_damaged(tmp_path, tiny_random_model):
    _saved(tmp_path, tiny_random_model, [2, 4])
    warnings: list[str] = []

    def load(c):
        if c.step == 4:
            raise RuntimeError("PytorchStreamReader failed reading zip archive")
        return c.step

    assert resume_checkpoint(tmp_path, load, warnings.append)[1] == 2
    assert "cannot be loaded (RuntimeError: PytorchStreamReader failed reading zip archive)" in warnings[0]


def test_no_intact_checkpoint_is_one_error(tmp_path, tiny_random_model):
    for ckpt in _saved(tmp_path, tiny_random_model, [2, 4]):
        (ckpt.path / "trainer_state.pt").write_bytes(b"")
    with pytest.raises(CheckpointError) as e:
        resume_checkpoint(tmp_path, lambda c: c.load_state(), lambda _: None)
    assert "step_000004 (trainer_state.pt has 0 bytes" in str(e.value) and "\n" not in str(e.value)
    assert resume_checkpoint(tmp_path / "fresh", lambda c: c, lambda _: None) is None


def test_trainer_state_is_read_without_unpickling_objects(tmp_path, tiny_random_model):
    # weights_only=True: the optimizer and scheduler states are tensors and plain containers only.
    model, tok = load_model(str(tiny_random_model)), load_tokenizer(str(tiny_random_model))
    optimizer, scheduler = make_optimizer(ZeroConfig(), model)
    model(torch.tensor([[1, 2, 3]])).logits.sum().backward()
    optimizer.step()
    scheduler.step()
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": 1, "reference": None}
    ckpt = save_checkpoint(tmp_path, 1, model, tok, state)
    loaded = ckpt.load_state()
    assert loaded["scheduler"] == scheduler.state_dict()
    assert torch.equal(loaded["optimizer"]["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    torch.save({"object": ZeroConfig()}, ckpt.path / "trainer_state.pt")
    with pytest.raises(Exception, match="Weights only load failed"):
        ckpt.load_state()

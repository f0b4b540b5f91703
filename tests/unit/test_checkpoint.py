"""Checkpoints are atomic and the metrics log survives a kill mid-line."""

from __future__ import annotations

import torch

from r1kit.models.loading import load_model, load_tokenizer
from r1kit.trainers.checkpoint import MetricsLog, latest_checkpoint, save_checkpoint


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

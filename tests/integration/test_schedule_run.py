"""A GRPO run on the embedded model whose completion budget, temperature and KL coefficient follow step
schedules (`r1kit.schedules`): each step samples, scores and trains under its own values, logs them as
`schedule/*`, and a run resumed mid-schedule equals an uninterrupted one."""

from __future__ import annotations

import json

from r1kit.config import ZeroConfig, load_config
from r1kit.stages.grpo import TIMING_KEYS, run_grpo

RUN = ["steps=3", "prompts_per_step=2", "group_size=2", "task.eval_size=2", "eval.samples=1", "eval.every=0",
       "eval.max_new_tokens=8", "save_every=1", "threads=1", "optim.lr=1e-3", "grpo.kl_coef={0: 0, 1: 0.05}",
       "rollout.max_new_tokens={0: 8, 2: 24}", "rollout.temperature={0: 1.0, 2: 0.9}"]


def _train_rows(out_dir, *overrides):
    cfg = load_config(ZeroConfig, None, [f"out_dir={out_dir}", *RUN, *overrides])
    run_grpo(cfg, progress=False)
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("eval/") and k not in TIMING_KEYS}
            for r in rows if r["step"] > 0]


def test_a_grpo_run_follows_its_schedules_and_resumes_exactly(tmp_path):
    rows = _train_rows(tmp_path / "straight")
    assert [r["schedule/max_new_tokens"] for r in rows] == [8.0, 8.0, 24.0]
    assert [r["schedule/kl_coef"] for r in rows] == [0.0, 0.05, 0.05]
    assert [r["schedule/temperature"] for r in rows] == [1.0, 1.0, 0.9]
    assert all(r["response_length/max"] <= 8 for r in rows[:2])
    assert 8 < rows[2]["response_length/max"] <= 24  # the embedded model writes longer answers than 8 tokens
    # Two invocations (2 steps, then raised to 3) are the same run as 3 steps at once.
    _train_rows(tmp_path / "resumed", "steps=2")
    assert _train_rows(tmp_path / "resumed") == rows

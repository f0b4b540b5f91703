"""Reward scoring: worker processes agree with in-process scoring, timeouts cost one sample, chunks overlap."""

from __future__ import annotations

import math
import time

import torch

from r1kit.config import ZeroConfig, load_config
from r1kit.models.loading import load_model, load_tokenizer
from r1kit.rewards import compute_rewards
from r1kit.rewards.scoring import RewardScorer
from r1kit.rollout import HFGenerator
from r1kit.trainers.grpo import _chunks, collect_rollout, make_scorer
from r1kit.types import Example

HANG = "$10^{10^{10^{10}}}$"  # sympy cannot evaluate it: grading it never returns on its own

EXAMPLES = [Example(prompt="q", answer=a, task="t", verifier="math") for a in ("\\frac{1}{2}", "7", "x+1", "3")]
COMPLETIONS = ["<think>half</think> <answer>0.5</answer>", "<think>7</think><answer>8</answer>",
               "so the answer is $\\boxed{1+x}$", "<think>" + "a " * 40 + "</think><answer>3</answer> trailing"]
WEIGHTS = {"accuracy": 1.0, "format": 0.5, "readable_format": 0.1, "overlong": 1.0}
SETTINGS = {"max_completion_tokens": 50, "overlong_cache": 10}
LENGTHS = [10, 10, 45, 60]


def test_workers_score_like_the_trainers_own_process():
    local = compute_rewards(["q"] * 4, COMPLETIONS, EXAMPLES, WEIGHTS,
                            settings={**SETTINGS, "completion_lengths": LENGTHS})
    assert local.per_reward["accuracy"] == [1.0, 0.0, 1.0, 1.0]
    assert local.per_reward["format"] == [1.0, 1.0, 0.0, 0.0]
    assert local.per_reward["overlong"] == [0.0, 0.0, -0.5, -1.0]
    with RewardScorer(WEIGHTS, workers=2, timeout_s=30, settings=SETTINGS) as scorer:
        remote = scorer.submit(["q"] * 4, COMPLETIONS, EXAMPLES, LENGTHS).result()
    assert remote.per_reward == local.per_reward and remote.total == local.total
    assert remote.timeouts == remote.errors == 0


def test_a_hung_sample_scores_zero_and_is_counted_while_the_rest_are_scored():
    examples = [*EXAMPLES[:2], Example(prompt="q", answer=HANG, task="t", verifier="math")]
    completions = [*COMPLETIONS[:2], "<think>big</think><answer>1</answer>"]
    with RewardScorer({"accuracy": 1.0, "format": 1.0}, workers=2, timeout_s=1.0) as scorer:
        start = time.monotonic()
        pending = scorer.submit(["q"] * 3, completions, examples, [5, 5, 5])
        assert time.monotonic() - start < 0.5  # submit returns before the hung sample is given up on
        result = pending.result()
    assert result.timeouts == 1
    assert result.per_reward["accuracy"] == [1.0, 0.0, 0.0]
    assert result.per_reward["format"] == [1.0, 1.0, 0.0]  # the hung sample loses every reward


def test_chunks_cover_every_prompt_once():
    assert _chunks(16, 1) == [(0, 16)]
    assert _chunks(16, 3) == [(0, 5), (5, 11), (11, 16)]
    assert _chunks(2, 8) == [(0, 1), (1, 2)]


def test_chunked_rollout_with_reward_workers_counts_timeouts(tiny_random_model):
    tok = load_tokenizer(str(tiny_random_model))
    policy = load_model(str(tiny_random_model))
    gen = HFGenerator(policy, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    examples = [Example(prompt=f"{i}+{i}", answer=str(2 * i), task="t", verifier="math") for i in range(3)]
    examples.append(Example(prompt="hang", answer=HANG, task="t", verifier="math"))
    ids = [tok(e.prompt, add_special_tokens=False)["input_ids"] for e in examples]
    cfg = load_config(ZeroConfig, None, ["prompts_per_step=4", "group_size=2", "rollout.max_new_tokens=8",
                                         "rewards={accuracy: 1.0, overlong: 1.0}", "scoring.workers=2",
                                         "scoring.chunks=2", "scoring.timeout_s=1.0", "scoring.overlong_cache=4"])
    with make_scorer(cfg) as scorer:
        rollout = collect_rollout(cfg, 0, gen, tok, policy, None, examples, ids, scorer)
    assert rollout.completion_ids.shape[0] == 8 and rollout.rewards.shape == (4, 2)
    # Random text rarely holds an answer to grade, so only the overlong reward shows; the "hang" prompt's
    # two samples may hold one (then grading hangs: the sample times out, is counted, and scores 0).
    timeouts = rollout.metrics["reward/timeouts"]
    assert timeouts in (0.0, 1.0, 2.0)
    lengths = rollout.completion_mask.sum(dim=1)
    expected = torch.tensor([-1.0 if n >= 8 else ((4 - n) / 4 if n > 4 else 0.0) for n in lengths.tolist()])
    rewards = rollout.rewards.view(-1)
    assert torch.allclose(rewards[:6], expected[:6])
    hung = [r for r in range(6, 8) if not torch.isclose(rewards[r], expected[r])]
    assert all(rewards[r] == 0.0 for r in hung) and len(hung) <= timeouts


def test_each_task_is_scored_with_its_own_rewards_in_process_and_in_workers():
    examples = [Example(prompt="q", answer="4", task="math_like", verifier="integer"),
                Example(prompt="q", answer="", task="chat", verifier="chitchat")]
    completions = ["<think>2+2</think> <answer>4</answer>", "Hello! How can I help you today?"]
    task_weights = {"math_like": {"accuracy": 1.0, "format": 0.5}, "chat": {"accuracy": 2.0}}
    results = []
    for workers in (0, 2):
        with RewardScorer({"accuracy": 1.0}, workers=workers, timeout_s=30, task_weights=task_weights) as scorer:
            results.append(scorer.submit(["q", "q"], completions, examples, [5, 5]).result())
    for result in results:
        assert result.total == [1.5, 2.0]
        assert result.per_reward["accuracy"] == [1.0, 1.0]
        assert result.per_reward["format"][0] == 1.0 and math.isnan(result.per_reward["format"][1])

"""Step schedules (`r1kit.schedules`): golden values, the config forms they take (override, YAML, the JSON
of a run directory), the checks, and the overlong reward's per-step budget. A GRPO run under schedules:
tests/integration/test_schedule_run.py."""

from __future__ import annotations

import json

import pytest

from r1kit.config import ConfigError, ZeroConfig, build_config, config_yaml, load_config, to_dict
from r1kit.rewards.scoring import RewardScorer
from r1kit.schedules import check_steps, scalar, schedule_values, value_at
from r1kit.stages.grpo import scheduled, validate
from r1kit.trainers.record import check_resume, record_invocation
from r1kit.types import Example

# --- value_at: golden numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "step", "interpolation", "expected"),
    [
        (96, 0, "step", 96),  # a plain value is constant
        (0.01, 10**6, "linear", 0.01),
        ({0: 64, 60: 128}, 0, "step", 64),
        ({0: 64, 60: 128}, 59, "step", 64),  # the value of the largest key <= step
        ({0: 64, 60: 128}, 60, "step", 128),
        ({60: 128, 0: 64}, 61, "step", 128),  # key order in the mapping does not matter
        ({0: 64, 60: 128}, 15, "linear", 80),  # 64 + (128 - 64) * 15/60 = 80
        ({0: 64, 60: 128}, 1000, "linear", 128),  # the last value holds after the last key
        ({0: 10, 3: 11}, 1, "linear", 10),  # 10.33 rounds to 10: an integer schedule stays integer
        ({0: 10, 3: 11}, 2, "linear", 11),  # 10.67 -> 11
        ({0: 1.0, 10: 0.5, 20: 0.5}, 5, "linear", 0.75),  # 1.0 + (0.5 - 1.0) * 5/10
        ({0: 1.0, 10: 0.5, 20: 0.5}, 15, "linear", 0.5),
        ({0: 0.001, 100: 0.0}, 99, "step", 0.001),
    ],
)
def test_value_at(schedule, step, interpolation, expected):
    value = value_at(schedule, step, interpolation=interpolation)
    assert value == pytest.approx(expected) and type(value) is type(expected)


def test_schedule_values_and_scalar():
    assert schedule_values({60: 128, 0: 64}) == [64, 128]
    assert max(schedule_values(96)) == 96
    assert scalar(0.5) == 0.5
    with pytest.raises(TypeError, match="at_step"):
        scalar({0: 1.0})


@pytest.mark.parametrize(
    ("schedule", "message"),
    [({10: 64}, "needs a value at step 0, got steps 10"), ({}, "got an empty mapping"),
     ({0: 1, -5: 2}, "must be >= 0"), ({0: 1, "5": 2}, "integer steps")],
)
def test_bad_schedules_are_refused(schedule, message):
    with pytest.raises(ValueError, match=message):
        check_steps(schedule)
    with pytest.raises(ValueError, match=message):
        value_at(schedule, 3)


# --- the config forms ---------------------------------------------------------------------------------------


def test_a_schedule_from_the_command_line_and_at_a_step():
    cfg = load_config(ZeroConfig, None, ["rollout.max_new_tokens={0: 64, 60: 128}", "grpo.kl_coef={0: 1e-3, 5: 0}",
                                         "rollout.temperature={0: 1, 10: 0.5}"])
    assert cfg.rollout.max_new_tokens == {0: 64, 60: 128}
    assert cfg.grpo.kl_coef == {0: 0.001, 5: 0.0} and isinstance(cfg.grpo.kl_coef[5], float)
    assert cfg.rollout.temperature == {0: 1.0, 10: 0.5}
    now = cfg.at_step(60)
    assert (now.rollout.max_new_tokens, now.rollout.temperature, now.grpo.kl_coef) == (128, 0.5, 0.0)
    assert scheduled(cfg, 60) == {"schedule/max_new_tokens": 128.0, "schedule/temperature": 0.5,
                                  "schedule/kl_coef": 0.0}
    linear = load_config(ZeroConfig, None, ["rollout.max_new_tokens={0: 64, 60: 128}", "schedule=linear"])
    assert linear.at_step(30).rollout.max_new_tokens == 96  # 64 + 64 * 30/60
    # Plain values read as before, and log no schedule/ metrics.
    plain = load_config(ZeroConfig, None, ["rollout.max_new_tokens=48"])
    assert plain.rollout.max_new_tokens == 48 and plain.at_step(7) == plain and scheduled(plain, 7) == {}


def test_a_schedule_in_a_yaml_recipe_and_print_config_round_trip(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("rollout:\n  max_new_tokens:\n    0: 64\n    60: 128\ngrpo:\n  kl_coef: {0: 0.001}\n")
    cfg = load_config(ZeroConfig, recipe)
    assert cfg.rollout.max_new_tokens == {0: 64, 60: 128} and cfg.grpo.kl_coef == {0: 0.001}
    printed = tmp_path / "printed.yaml"
    printed.write_text(config_yaml(cfg))
    assert load_config(ZeroConfig, printed) == cfg


def test_a_schedule_survives_the_json_of_a_run_directory():
    cfg = load_config(ZeroConfig, None, ["rollout.max_new_tokens={0: 64, 60: 128}", "rewards={accuracy: 1}"])
    raw = json.loads(json.dumps(to_dict(cfg)))  # invocations.jsonl: every key a string
    assert raw["rollout"]["max_new_tokens"] == {"0": 64, "60": 128}
    assert build_config(ZeroConfig, raw) == cfg  # int keys again; dict[str, float] keys stay strings


def test_resume_check_with_a_schedule(tmp_path):
    cfg = load_config(ZeroConfig, None, ["rollout.max_new_tokens={0: 64, 60: 128}"])
    record_invocation(tmp_path, cfg, resumed_from=0, changed=[])
    assert check_resume(tmp_path, cfg) == []  # the same schedule, read back from JSON, is no change
    other = load_config(ZeroConfig, None, ["rollout.max_new_tokens={0: 64, 50: 128}"])
    with pytest.raises(ConfigError, match=r"rollout\.max_new_tokens\.50"):
        check_resume(tmp_path, other)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["rollout.max_new_tokens={10: 64}"], "'rollout.max_new_tokens': a schedule needs a value at step 0"),
        (["grpo.kl_coef={}"], "'grpo.kl_coef': a schedule needs a value at step 0"),
        (["rollout.max_new_tokens={0: 64, -3: 8}"], "'rollout.max_new_tokens': a schedule's steps must be >= 0"),
        (["rollout.max_new_tokens={0: 64, 10: -8}"], "'rollout.max_new_tokens' must be > 0, got -8"),
        (["grpo.kl_coef={0: 0.1, 10: -0.1}"], "'grpo.kl_coef' must be >= 0, got -0.1"),
        (["rollout.temperature={0: -1}"], "'rollout.temperature' must be >= 0, got -1.0"),
    ],
)
def test_bad_schedule_values_name_the_key(overrides, message):
    cfg = load_config(ZeroConfig, None, overrides)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["rollout.max_new_tokens={0: 64, late: 128}"], "'rollout.max_new_tokens' expects integer keys (steps), "
                                                         "got 'late'"),
        (["rollout.max_new_tokens={0: 64, '--5': 128}"], "expects integer keys (steps), got '--5'"),
        (["rollout.max_new_tokens={0: 64, '²': 128}"], "expects integer keys (steps), got '²'"),
        (["rollout.max_new_tokens={0: 64, 10: 2.5}"], "'rollout.max_new_tokens.10' expects an integer, got 2.5"),
        (["rollout.max_new_tokens=long"], "'rollout.max_new_tokens' expects an integer or a mapping "
                                          "{integer: integer}, got 'long'"),
        (["grpo.kl_coef=[0.1]"], "'grpo.kl_coef' expects a number or a mapping {integer: number}"),
        (["schedule=cosine"], "'schedule' must be one of step, linear"),
    ],
)
def test_bad_schedule_forms_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as e:
        load_config(ZeroConfig, None, overrides)
    assert message in str(e.value)


def test_the_overlong_reward_reads_the_step_budget_of_each_chunk():
    # DAPO's overlong penalty with L_max = 10, L_cache = 4: a 12-token completion is past L_max (-1); under a
    # step budget of 16 it is inside the cache window: ((16 - 4) - 12) / 4 = 0.
    example = Example(prompt="1+1", answer="2", task="t", verifier="integer")
    with RewardScorer({"overlong": 1.0}, settings={"max_completion_tokens": 10, "overlong_cache": 4}) as scorer:
        short = scorer.submit(["p"], ["x" * 12], [example], [12], step=0).result()
        long = scorer.submit(["p"], ["x" * 12], [example], [12], step=5,
                             settings={"max_completion_tokens": 16}).result()
    assert short.total == [-1.0] and long.total == [0.0]

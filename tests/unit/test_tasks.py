"""Procedural tasks: seeded, sized, train disjoint from the whole test pool, bad requests rejected."""

import pytest

from r1kit.rewards.countdown import verify_countdown
from r1kit.rewards.extract import verify_integer
from r1kit.tasks import TASKS, arithmetic, countdown, load_task
from r1kit.templates import render_prompt


def _key(task: str, info) -> tuple:
    if task == "arithmetic":
        return tuple(sorted((info["a"], info["b"])))  # a+b and b+a are one problem
    return (tuple(sorted(info["numbers"])), info["target"])


@pytest.mark.parametrize("name", ["arithmetic", "countdown"])
def test_registry_and_fields(name):
    examples = load_task(name, "test", n=5)
    assert len(examples) == 5
    for e in examples:
        assert e.task == name
        assert e.verifier == {"arithmetic": "integer", "countdown": "countdown"}[name]
        assert e.prompt and e.answer
    assert TASKS[name]("test", n=5) == examples


@pytest.mark.parametrize("name", ["arithmetic", "countdown"])
def test_test_pool_is_fixed_and_n_takes_a_prefix(name):
    full = load_task(name, "test")
    assert len(full) == 1000
    assert load_task(name, "test", seed=123) == full  # the seed never changes the test pool
    assert load_task(name, "test", n=10) == full[:10]
    assert len({_key(name, e.info) for e in full}) == 1000  # no repeated problem


@pytest.mark.parametrize("name", ["arithmetic", "countdown"])
def test_train_is_seeded_and_disjoint_from_the_whole_test_pool(name):
    a, b, c = (load_task(name, "train", n=3000, seed=s) for s in (0, 0, 1))
    assert a == b
    assert a != c
    assert len(a) == 3000
    assert load_task(name, "train", n=100, seed=0) == a[:100]
    test_keys = {_key(name, e.info) for e in load_task(name, "test")}
    train_keys = [_key(name, e.info) for e in a + c]
    assert not test_keys & set(train_keys)
    assert len(set(_key(name, e.info) for e in a)) == len(a)


@pytest.mark.parametrize("name", ["arithmetic", "countdown"])
def test_default_train_size(name):
    assert len(load_task(name, "train")) == 20_000


def test_references_verify():
    for e in load_task("arithmetic", "test", n=200):
        assert verify_integer(e.answer, e.answer, e.info)
        assert int(e.answer) == e.info["a"] + e.info["b"]
        assert e.prompt == f"{e.info['a']}+{e.info['b']}"
    for e in load_task("countdown", "test", n=200) + load_task("countdown", "train", n=200):
        assert verify_countdown(e.answer, e.answer, e.info), e
        assert len(e.info["numbers"]) in (3, 4)
        assert 1 <= e.info["target"] <= countdown.MAX_TARGET


def test_prompts_render_into_the_r1_zero_template():
    e = load_task("arithmetic", "test", n=1)[0]
    assert render_prompt(e.prompt, "r1_zero").endswith(f"User: {e.prompt}. Assistant:")
    c = load_task("countdown", "test", n=1)[0]
    text = render_prompt(c.prompt, "r1_zero")
    assert str(c.info["target"]) in text
    assert all(str(x) in c.prompt for x in c.info["numbers"])


@pytest.mark.parametrize(
    ("split", "n", "message"),
    [
        ("validation", None, "unknown split"),
        ("test", 1001, "test pool holds 1000"),
        ("test", -1, "test pool holds 1000"),
        ("train", -5, "train n must be"),
        ("train", 10**9, "train n must be"),
    ],
)
@pytest.mark.parametrize("module", [arithmetic, countdown])
def test_bad_requests_raise_value_error(module, split, n, message):
    with pytest.raises(ValueError, match=message):
        module.load(split, n=n)


def test_unknown_task():
    with pytest.raises(ValueError, match=r"unknown task 'nope'; choose one of .*arithmetic.*countdown"):
        load_task("nope", "train")

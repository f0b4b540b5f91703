"""Knights and Knaves: the verifier on every gold answer of the data, rearranged and broken answers, and
the task loader."""

import random
import time

import pytest

from r1kit.rewards.logic import parse_roles, verify_knights_knaves
from r1kit.tasks.knights_knaves import INSTRUCTION, load_knights_knaves, make_example

GOLD = "(1) Amelia is a knight\n(2) Penelope is a knight\n(3) Evelyn is a knave"
INFO = {"names": ["Amelia", "Penelope", "Evelyn"], "solution": [True, True, False]}
FILES = [(k, split) for k in (3, 5, 7) for split in ("train", "test")]


def _statements(names, solution):
    return [f"{name} is a {'knight' if knight else 'knave'}" for name, knight in zip(names, solution)]


@pytest.mark.parametrize(("people", "split"), FILES, ids=[f"{k}ppl-{s}" for k, s in FILES])
def test_every_gold_answer_of_the_data_verifies(shared_data, people, split):
    examples = load_knights_knaves(split, path=shared_data / "knights_knaves", people=people)
    assert len(examples) == (900 if split == "train" else 100)
    rng = random.Random(people)
    for e in examples:
        names, solution = e.info["names"], e.info["solution"]
        assert len(names) == people
        assert verify_knights_knaves(e.answer, e.answer, e.info), e.answer
        assert verify_knights_knaves(e.answer, e.answer, {}), e.answer  # the text alone as the reference
        shuffled = _statements(names, solution)
        rng.shuffle(shuffled)
        assert verify_knights_knaves(f"<answer>{'; '.join(shuffled)}</answer>", e.answer, e.info)
        i = rng.randrange(people)
        flipped = [not s if j == i else s for j, s in enumerate(solution)]
        assert not verify_knights_knaves("\n".join(_statements(names, flipped)), e.answer, e.info)
        assert not verify_knights_knaves("\n".join(_statements(names, solution)[1:]), e.answer, e.info)


RIGHT = [
    (GOLD, "the gold text"),
    ("Evelyn is a knave, Amelia is a knight, and Penelope is a knight.", "any order, one sentence"),
    ("Amelia is a knight; Penelope is a knight; Evelyn is a knave", "semicolons"),
    ("1. Penelope is a knight\n2. Evelyn is a knave\n3. Amelia is a knight", "other numbering"),
    ("Amelia and Penelope are knights, and Evelyn is a knave.", "plural statement"),
    ("Amelia: knight\nPenelope: Knight\nEvelyn: KNAVE", "labels, any case of the role"),
    ("**Amelia** is a **knight**, **Penelope** is a **knight**, **Evelyn** is a **knave**", "markdown"),
    ("Amelia is a knight, Penelope is a knight, Evelyn is not a knight", "negated role"),
    ("<think>Assume Evelyn is a knight ... contradiction.</think>\n<answer>" + GOLD + "</answer>", "answer block"),
    ("Amelia is a knight, PENELOPE is a knight, Evelyn is a knave", "capitals in a name do not matter"),
]


@pytest.mark.parametrize(("pred", "why"), RIGHT, ids=[c[1] for c in RIGHT])
def test_right_answers(pred, why):
    assert verify_knights_knaves(pred, GOLD, INFO)


WRONG = [
    ("(1) Amelia is a knight\n(2) Penelope is a knave\n(3) Evelyn is a knave", "one role flipped"),
    ("Amelia is a knight, Penelope is a knight", "a person missing"),
    (GOLD + "\n(4) Zoey is a knight", "a person not in the puzzle"),
    (GOLD + "\nAmelia is a knave", "contradiction: Amelia both"),
    (GOLD + "\nAmelia is a knight", "the same person twice"),
    ("Amelia is a knight, Penelope is a knight or a knave, Evelyn is a knave", "hedged role"),
    ("All of them are knights", "no names"),
    ("<think>" + GOLD + "</think><answer>I cannot tell</answer>", "answer block without the roles"),
    ("", "empty"),
    ("Amelia is a knight, Penelope is a knight, Eve is a knave", "a near name"),
    ("amelia is a knight, Penelope is a knight, Evelyn is a knave", "names are read only when capitalised"),
]


@pytest.mark.parametrize(("pred", "why"), WRONG, ids=[c[1] for c in WRONG])
def test_wrong_answers(pred, why):
    assert not verify_knights_knaves(pred, GOLD, INFO)


def test_whole_words_only():
    # Jack and Jackson are both names in the data: one must not be read as the other.
    info = {"names": ["Jack", "Jackson"], "solution": [True, False]}
    gold = "(1) Jack is a knight\n(2) Jackson is a knave"
    assert verify_knights_knaves("Jackson is a knave, Jack is a knight", gold, info)
    assert not verify_knights_knaves("Jackson is a knave, Jackson is a knight", gold, info)


@pytest.mark.parametrize("bad", [None, 42, ["Amelia is a knight"]])
def test_never_raises(bad):
    assert verify_knights_knaves(bad, GOLD, INFO) is False
    assert verify_knights_knaves(GOLD, bad, {}) is False
    assert verify_knights_knaves(GOLD, GOLD, {"names": bad, "solution": [True]}) is False


def test_bad_reference_is_false():
    assert not verify_knights_knaves(GOLD, GOLD, {"names": ["Amelia"], "solution": [True, False]})
    assert not verify_knights_knaves("Amelia is a knight", "Amelia is a knight or a knave", {})


def test_parse_roles_in_order():
    assert parse_roles("Zoey is not a knave and Owen -> knave") == [("Zoey", True), ("Owen", False)]


def test_loader_records_and_seeded_draws(shared_data):
    path = shared_data / "knights_knaves"
    everything = load_knights_knaves("test", path=path)
    assert len(everything) == 300
    assert [len(e.info["names"]) for e in everything[::100]] == [3, 5, 7]  # smallest puzzles first
    e = everything[0]
    assert (e.task, e.verifier) == ("knights_knaves", "knights_knaves")
    assert e.prompt.endswith(INSTRUCTION) and "knights and knaves" in e.prompt
    draw = load_knights_knaves("train", n=20, seed=1, path=path)
    assert draw == load_knights_knaves("train", n=20, seed=1, path=path)
    assert draw != load_knights_knaves("train", n=20, seed=2, path=path)
    assert len(load_knights_knaves("test", path=path / "5ppl")) == 100
    assert len(load_knights_knaves("test", path=path / "7ppl" / "test.parquet")) == 100


def test_loader_errors(shared_data, tmp_path):
    path = shared_data / "knights_knaves"
    with pytest.raises(ValueError, match=r"from the hub.*set a local path"):
        load_knights_knaves("train")
    with pytest.raises(ValueError, match="splits"):
        load_knights_knaves("dev", path=path)
    with pytest.raises(ValueError, match="not found"):
        load_knights_knaves("test", path=path, people=4)
    with pytest.raises(ValueError, match="n=101"):
        load_knights_knaves("test", n=101, path=path, people=3)
    with pytest.raises(ValueError, match="not found"):
        load_knights_knaves("test", path=tmp_path)


def test_make_example_rejects_bad_rows():
    with pytest.raises(ValueError, match="bad puzzle"):
        make_example({"quiz": "Q", "names": ["A", "B"], "solution": [True], "solution_text_format": "x"})
    with pytest.raises(ValueError, match="need fields"):
        make_example({"quiz": "Q"})


@pytest.mark.parametrize("text", ["A, " * 20_000, "Amelia and " * 5_000 + "Bob are knights", "Amelia" + " " * 50_000])
def test_long_adversarial_text_is_linear(text):
    start = time.perf_counter()
    parse_roles(text)
    assert not verify_knights_knaves(text, GOLD, INFO)
    assert time.perf_counter() - start < 2.0

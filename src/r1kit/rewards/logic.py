"""Knights and Knaves ("knights_knaves"): is every islander given the right role, once?

The logic task of Logic-RL (Xie et al. 2025, "Logic-RL: Unleashing LLM Reasoning with Rule-Based
Reinforcement Learning"), on the puzzles of Xie et al. 2024 ("On Memorization of Large Language Models
in Logical Reasoning"): knights always tell the truth, knaves always lie, and the answer names the role
of each of 3 to 8 inhabitants. R1-SPEC section 3 lists logic among the reasoning-RL domains.

The prediction is read from its last `<answer>...</answer>` when it has one, else whole. It is a set of
role statements in any order, numbered or not, separated by newlines, commas, semicolons or "and":

    (1) Amelia is a knight            Amelia: knave             Amelia is not a knight  (= a knave)
    Amelia and Evelyn are knights     Amelia -> knight          **Amelia** is a **Knave**

It is right when each inhabitant gets exactly one statement and that statement holds. It is wrong when
someone is left out, named twice (even with the same role: the answer must be a clean list, as in
Logic-RL's parser), given both roles, hedged ("a knight or a knave"), or when a statement names someone
who is not in the puzzle. A name is a capitalised word (so "who is a knight" is no statement); names
compare case-insensitively ("PENELOPE" is Penelope) and as whole words ("Jack" is not "Jackson").

The reference: `info["names"]` and `info["solution"]` (booleans, True = knight, the data set's fields)
when present; otherwise the `answer` text itself, parsed like a prediction (the data set's
`solution_text_format`, "(1) Amelia is a knight\\n(2) ..."). Logic-RL scores format and answer apart
(-2..+3); here the verifier gives a bool and the format reward is the registry's own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from r1kit.rewards.extract import extract_answer

MAX_CHARS = 5000  # an answer block longer than this is not a list of roles
MAX_LIST = 16  # names in one plural statement; a bound keeps the pattern linear (puzzles have 3 to 8)
_NAME = r"[A-Z][A-Za-z'’-]*"
_ROLE = r"(?i:an?\s+)?(?P<role>(?i:knight|knave))"
_HEDGE = r"(?P<hedge>\s+(?i:or)\s+(?i:an?\s+)?(?i:knight|knave))?"
# "Amelia is a knight", "Amelia is not a knave", "Amelia: knight", "Amelia -> knave", "Amelia = knight".
_SINGULAR = re.compile(
    rf"(?<![A-Za-z'’-])(?P<name>{_NAME})\s*(?:(?i:is|was|must\s+be)\s+(?P<neg>(?i:not)\s+)?|(?:[:=]|->|→|-|–|—)\s*)"
    rf"{_ROLE}s?\b{_HEDGE}"
)
# "Amelia and Evelyn are knights", "Amelia, Evelyn, and Owen are knaves".
_PLURAL = re.compile(
    rf"(?<![A-Za-z'’-])(?P<names>{_NAME}(?:\s*(?:,|&|(?i:and))\s*(?:(?i:and)\s+)?{_NAME}){{1,{MAX_LIST - 1}}})"
    rf"\s+(?i:are|were)\s+"
    rf"(?P<neg>(?i:not)\s+)?(?:(?i:all|both)\s+)?(?P<role>(?i:knights|knaves))\b{_HEDGE}"
)
_SPLIT_NAMES = re.compile(r"\s*(?:,|&|\band\b)\s*(?:and\s+)?", re.IGNORECASE)


def parse_roles(text: str) -> list[tuple[str, bool | None]]:
    """Every role statement of `text` in order, as (name as written, True for knight / False for knave /
    None when hedged). Statements are found anywhere, so the caller decides what a clean answer is.

    >>> parse_roles("(1) Amelia is a knight\\n(2) Evelyn is a knave")
    [('Amelia', True), ('Evelyn', False)]
    >>> parse_roles("Owen and Mia are knaves; Zoey is not a knave, Liam is a knight or a knave")
    [('Owen', False), ('Mia', False), ('Zoey', True), ('Liam', None)]
    """
    text = text.replace("*", "")  # markdown bold around names and roles
    found: list[tuple[int, str, bool | None]] = []
    taken: list[tuple[int, int]] = []
    for m in _PLURAL.finditer(text):
        role = _role(m)
        names = [n for n in _SPLIT_NAMES.split(m.group("names")) if n]
        found.extend((m.start(), name, role) for name in names)
        taken.append(m.span())
    for m in _SINGULAR.finditer(text):
        if not any(a <= m.start() < b for a, b in taken):
            found.append((m.start(), m.group("name"), _role(m)))
    return [(name, role) for _, name, role in sorted(found, key=lambda f: f[0])]


def _role(m: re.Match[str]) -> bool | None:
    if m.group("hedge"):
        return None
    knight = m.group("role").lower().startswith("knight")
    return knight != bool(m.group("neg"))


def verify_knights_knaves(pred: str, answer: str, info: Mapping[str, Any]) -> bool:
    """True when the prediction gives every inhabitant their role, each exactly once, and no one else.

    >>> gold = "(1) Amelia is a knight\\n(2) Evelyn is a knave"
    >>> verify_knights_knaves("Evelyn is a knave, and Amelia is a knight.", gold, {})
    True
    >>> verify_knights_knaves("Amelia is a knight", gold, {})  # Evelyn is missing
    False
    >>> verify_knights_knaves("Amelia is a knight, Evelyn is a knight", gold,
    ...                       {"names": ["Amelia", "Evelyn"], "solution": [True, False]})
    False
    """
    try:
        gold = _reference(answer, info)
        block = extract_answer(pred)
        text = pred if block is None else block
        if gold is None or len(text) > MAX_CHARS:
            return False
        claims = parse_roles(text)
        counts = Counter(name.lower() for name, _ in claims)
        if set(counts) != set(gold) or any(c != 1 for c in counts.values()):
            return False
        return all(role is not None and role == gold[name.lower()] for name, role in claims)
    except Exception:
        return False


def _reference(answer: str, info: Mapping[str, Any]) -> dict[str, bool] | None:
    """Lowercased name -> is a knight, from info's names and solution, else from the answer text."""
    if "names" in info and "solution" in info:
        names, solution = list(info["names"]), list(info["solution"])
        if len(names) != len(solution) or len({str(n).lower() for n in names}) != len(names):
            return None
        return {str(n).lower(): bool(s) for n, s in zip(names, solution, strict=True)}
    claims = parse_roles(answer)
    gold = {name.lower(): role for name, role in claims}
    if not claims or len(gold) != len(claims) or any(role is None for role in gold.values()):
        return None
    return {name: bool(role) for name, role in gold.items()}

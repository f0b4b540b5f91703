"""What a sample votes with in cons@k, and when two votes are the same answer (verifier equivalence)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from r1kit.evaluation.benchmarks import last_boxed
from r1kit.rewards import VERIFIERS, extract_answer
from r1kit.rewards.choice import extract_choice
from r1kit.rewards.code import extract_code


def vote_answer(completion: str, verifier: str) -> str | None:
    """The answer a sample votes with in cons@k: its last `<answer>`, else its last `\\boxed{}` (math);
    the letter it commits to (choice); its last fenced Python block (code)."""
    if verifier == "code":
        answer = extract_code(completion)
    else:
        answer = extract_answer(completion)
        if verifier == "choice":
            answer = extract_choice(answer if answer is not None else completion)
        elif answer is None and verifier == "math":
            answer = last_boxed(completion)
    return answer.strip() if answer is not None and answer.strip() else None


def same_answer(verifier: str, info: Mapping[str, Any]) -> Callable[[str, str], bool]:
    """Verifier equivalence of two votes. Verifiers that judge against a reference value (integer,
    number, math, choice) compare the two answers with each other; the rest (countdown expressions,
    logic, code) compare the normalised text."""
    check = VERIFIERS.get(verifier)
    if check is None or verifier not in ("integer", "number", "math", "choice"):
        return lambda a, b: " ".join(a.split()) == " ".join(b.split())
    return lambda a, b: a == b or bool(check(b, a, info))

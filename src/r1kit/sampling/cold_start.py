"""The cold-start data of R1's stage 1 (R1-SPEC section 3), in miniature: readable long chains of thought.

The paper gathered thousands of examples "by few-shot prompting with a long CoT, by directly prompting
models to generate detailed answers with reflection and verification, and by gathering DeepSeek-R1-Zero
outputs in a readable format, refined through post-processing by human annotators", all in the readable
pattern `<think>reasoning</think> summary`. Here:

- **Rewriters** turn a correct R1-Zero sample into that pattern, keeping its steps (a recheck stays a
  recheck). `RuleRewriter` plays the annotators on the synthetic tasks (additions, Countdown): it reads
  the steps out of the trace and writes them out in full sentences in the prompt's language; a sample
  it cannot read is not used. `ModelRewriter` asks any causal LM to rewrite (for real models); both have
  the one method `rewrite(example, completion) -> str | None`.
- **The solver** (`solver_completion`) writes long chains of thought with reflection and verification
  directly from the problem: the columns with their carries, sometimes a slip noticed and fixed ("wait"),
  then a check by subtraction; for Countdown a search that backs off a wrong try and verifies the result.

Every written completion ends its summary with the answer in `<answer>...</answer>`, so the rule
verifiers read it unchanged.
"""

from __future__ import annotations

import random
import re
from typing import Protocol

from r1kit.rewards.countdown import tokenize
from r1kit.rewards.extract import extract_answer
from r1kit.tasks.countdown import fold_chain
from r1kit.types import Example

_COLUMN = re.compile(r"(\d)\+(\d)(\+1)?=(\d+)")

# The columns are written as the base model's pre-training traces write them ("7+5=12,4+8+1=13"): the
# cold start teaches a readable frame around the arithmetic the model already knows, not new arithmetic.
_TEXT = {
    "en": {"intro": "I add the columns from the units: ", "sep": ",", "so": ", so {r}.",
           "slip": " wait, I forgot the carry: ", "fix": "Wait, I forgot the carries. Let me check them: ",
           "check": "Let me check the carries again: ", "ok": ", so {r}. It matches.", "join": " ",
           "summary": "{a}+{b}={r}. <answer>{r}</answer>"},
    "zh": {"intro": "从个位开始逐列相加：", "sep": "，", "so": "，所以{r}。",
           "slip": "，等等，我忘了进位：", "fix": "等等，我忘了进位。让我检查一下：",
           "check": "再检查一遍进位：", "ok": "，所以{r}，没错。", "join": "",
           "summary": "{a}加{b}等于{r}。<answer>{r}</answer>"},
}


class Rewriter(Protocol):
    def rewrite(self, example: Example, completion: str) -> str | None: ...


def _columns(a: int, b: int) -> list[tuple[int, int, int, int]]:
    """(x, y, carry in, sum) of each column of a+b, from the units."""
    out, carry = [], 0
    for col in range(max(len(str(a)), len(str(b)))):
        x, y = a // 10**col % 10, b // 10**col % 10
        out.append((x, y, carry, x + y + carry))
        carry = int(x + y + carry >= 10)
    return out


def _steps(columns: list[tuple[int, int, int, int]], *, carry: bool = True) -> list[str]:
    """"7+5=12", "4+8+1=13", ...; without `carry` each column forgets it ("4+8=12")."""
    return [f"{x}+{y}+1={s}" if c and carry else f"{x}+{y}={x + y if not carry else s}" for x, y, c, s in columns]


def _careless_result(a: int, b: int) -> int:
    cols = _columns(a, b)
    digits = [str(x + y) if i == len(cols) - 1 else str((x + y) % 10) for i, (x, y, _, _) in enumerate(cols)]
    return int("".join(reversed(digits)))


def addition_thought(a: int, b: int, lang: str, *, slip_at: int | None = None, careless_first: bool = False,
                     verify: bool = True) -> str:
    """A readable chain of thought for a+b in `lang`: the columns with their carries, as the base model
    writes them. `slip_at` forgets the carry of that column at first and notices at once ("wait");
    `careless_first` writes a whole careless pass, then notices and redoes it (an R1-Zero recheck,
    cleaned up); `verify` checks the carries once more at the end.

    >>> addition_thought(347, 285, "en", verify=False)
    'I add the columns from the units: 7+5=12,4+8+1=13,3+2+1=6, so 632.'
    >>> addition_thought(347, 285, "zh", slip_at=1)
    '从个位开始逐列相加：7+5=12，4+8=12，等等，我忘了进位：4+8+1=13，3+2+1=6，所以632。再检查一遍进位：7+5=12，4+8+1=13，3+2+1=6，所以632，没错。'
    """
    t, cols = _TEXT[lang], _columns(a, b)
    right = _steps(cols)
    if careless_first:
        wrong = t["sep"].join(_steps(cols, carry=False)) + t["so"].format(r=_careless_result(a, b))
        text = t["intro"] + wrong + t["join"] + t["fix"] + t["sep"].join(right) + t["so"].format(r=a + b)
    elif slip_at is not None and 0 < slip_at < len(cols) and cols[slip_at][2]:
        x, y, _, _ = cols[slip_at]
        text = (t["intro"] + t["sep"].join([*right[:slip_at], f"{x}+{y}={x + y}"]) + t["slip"]
                + t["sep"].join(right[slip_at:]) + t["so"].format(r=a + b))
    else:
        text = t["intro"] + t["sep"].join(right) + t["so"].format(r=a + b)
    if verify:
        text += t["join"] + t["check"] + t["sep"].join(right) + t["ok"].format(r=a + b)
    return text


def readable(thought: str, summary: str) -> str:
    return f"<think>{thought}</think> {summary}"


def solver_completion(example: Example, rng: random.Random) -> str | None:
    """A long, readable, correct chain of thought with reflection and verification for `example`
    (additions and Countdown); None for other tasks."""
    info = example.info
    if "a" in info and "b" in info:
        a, b, lang = int(info["a"]), int(info["b"]), str(info.get("language", "en"))
        carries = [i for i, (_, _, c, _) in enumerate(_columns(a, b)) if c]
        slip = rng.choice(carries) if carries and rng.random() < 0.35 else None
        thought = addition_thought(a, b, lang, slip_at=slip, verify=rng.random() < 0.7)
        return readable(thought, _TEXT[lang]["summary"].format(a=a, b=b, r=a + b))
    if "numbers" in info and "target" in info:
        return _countdown_solution(example, rng)
    return None


def _countdown_solution(example: Example, rng: random.Random) -> str:
    """A first chain over all numbers (as the base model tries them), then, when it misses, "wait" and the
    reference chain, and a check that every number is used once."""
    numbers, target, answer = list(example.info["numbers"]), int(example.info["target"]), example.answer
    first = None
    for _ in range(50):
        order = rng.sample(numbers, len(numbers))
        first = fold_chain(order[0], [(rng.choice("+-*/"), y) for y in order[1:]])
        if first is not None:
            break
    ref = [t for t in tokenize(answer) if t not in ("(", ")")]
    chain = fold_chain(int(ref[0]), [(str(op), int(y)) for op, y in zip(ref[1::2], ref[2::2], strict=True)])
    assert chain is not None
    numbers_text = ", ".join(map(str, numbers))
    thought = f"I need {target} from {numbers_text}, each number once. "
    if first is not None and first[1] != target:
        thought += f"First try: {','.join(first[0])}, not {target}. Wait, let me try another way: "
    thought += f"{','.join(chain[0])}. That is {target}. Check: {answer} uses {numbers_text} once each."
    return readable(thought, f"{answer}={target}. <answer>{answer}</answer>")



class RuleRewriter:
    """Rewrites a correct R1-Zero addition trace readably, keeping its steps: a careless pass and its
    recheck stay a wrong pass noticed and redone, in full sentences of the prompt's language (a language
    switch is undone). Countdown traces get the solver's search ending in the trace's own answer.
    Anything it cannot read: None."""

    def rewrite(self, example: Example, completion: str) -> str | None:
        answer = extract_answer(completion)
        info = example.info
        if answer is None or answer.strip() != example.answer:
            return None
        if "a" in info and "b" in info:
            a, b, lang = int(info["a"]), int(info["b"]), str(info.get("language", "en"))
            thought = completion.split("</think>", 1)[0] if "</think>" in completion else ""
            columns = _COLUMN.findall(thought)
            rechecked = len(columns) > len(_columns(a, b))  # the trace went over the columns twice
            text = addition_thought(a, b, lang, careless_first=rechecked, verify=False)
            return readable(text, _TEXT[lang]["summary"].format(a=a, b=b, r=a + b))
        if "numbers" in info:
            return _countdown_solution(example, random.Random(len(completion)))
        return None


class ModelRewriter:
    """Asks a causal LM to rewrite a sample readably (for real models, where no rule can read the
    traces); the rewrite is kept only when its answer is still the gold."""

    PROMPT = ("Rewrite the following solution so that a person can read it: the reasoning in full "
              "sentences inside <think> </think>, then a short summary ending with the answer in "
              "<answer> </answer>. Keep every step and every check.\n\nQuestion: {question}\n\nSolution: {completion}")

    def __init__(self, path: str, *, device: str = "auto", max_new_tokens: int = 1024) -> None:
        from r1kit.models.device import resolve_device
        from r1kit.models.loading import load_model, load_tokenizer
        from r1kit.rollout import HFGenerator

        self.tokenizer = load_tokenizer(path)
        self.generator = HFGenerator(load_model(path, "float32", resolve_device(device)).eval(),
                                     eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id)
        self.max_new_tokens = max_new_tokens

    def rewrite(self, example: Example, completion: str) -> str | None:
        from r1kit.rollout import SamplingParams

        text = self.PROMPT.format(question=example.prompt, completion=completion)
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                      add_generation_prompt=True)
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        out = self.generator.generate([ids], SamplingParams(0.0, 1.0, self.max_new_tokens))
        rewritten = str(self.tokenizer.decode(out.completion_ids[0], skip_special_tokens=True)).strip()
        answer = extract_answer(rewritten)
        return rewritten if answer is not None and answer.strip() == example.answer.strip() else None

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
from r1kit.types import Example

_COLUMN = re.compile(r"(\d)\+(\d)(\+1)?=(\d+)")

_TEXT = {
    "en": {"intro": "I add {a} and {b} column by column, starting from the units.",
           "col": "{x}+{y}{c}={s}: write {d}{carry}.", "carry": ", carry 1", "last": "{x}+{y}{c}={s}: write {s}.",
           "so": "So {a}+{b}={r}.", "slip": "Wait, I forgot the carry in that column. Let me redo it:",
           "recheck": "Wait, did I carry every time? Let me check the columns again:",
           "verify": "Check by subtraction: {r}-{b}={a}, which matches.",
           "summary": "{a}+{b}={r}. <answer>{r}</answer>"},
    "zh": {"intro": "我从个位开始，一列一列地把{a}和{b}相加。",
           "col": "{x}+{y}{c}={s}：写{d}{carry}。", "carry": "，进1", "last": "{x}+{y}{c}={s}：写{s}。",
           "so": "所以{a}+{b}={r}。", "slip": "等等，这一列我忘了进位。重新算：",
           "recheck": "等等，我每次都进位了吗？让我再检查一遍：",
           "verify": "用减法验证：{r}-{b}={a}，正确。",
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


def _column_sentences(columns: list[tuple[int, int, int, int]], lang: str) -> list[str]:
    t, out = _TEXT[lang], []
    for i, (x, y, c, s) in enumerate(columns):
        carry = "+1" if c else ""
        if i == len(columns) - 1:
            out.append(t["last"].format(x=x, y=y, c=carry, s=s))
        else:
            out.append(t["col"].format(x=x, y=y, c=carry, s=s, d=s % 10, carry=t["carry"] if s >= 10 else ""))
    return out


def addition_thought(a: int, b: int, lang: str, *, recheck: bool = False, slip_at: int | None = None,
                     verify: bool = True) -> str:
    """A readable chain of thought for a+b in `lang`: the columns with their carries; `slip_at` makes
    that column forget its carry at first and notice it ("wait"); `recheck` redoes the columns after
    the first pass (the reflection of an R1-Zero trace); `verify` checks the sum by subtraction.

    >>> addition_thought(347, 285, "en", verify=False)  # doctest: +NORMALIZE_WHITESPACE
    'I add 347 and 285 column by column, starting from the units. 7+5=12: write 2, carry 1. 4+8+1=13: write 3,
    carry 1. 3+2+1=6: write 6. So 347+285=632.'
    """
    t, cols = _TEXT[lang], _columns(a, b)
    sentences = _column_sentences(cols, lang)
    sep = " " if lang == "en" else ""
    parts = [t["intro"].format(a=a, b=b)]
    if slip_at is not None and 0 < slip_at < len(cols) and cols[slip_at][2]:
        x, y, _, _ = cols[slip_at]
        wrong = f"{x}+{y}={x + y}" + ("：" if lang == "zh" else ":")
        parts += [*sentences[:slip_at], wrong, t["slip"], *sentences[slip_at:]]
    else:
        parts += sentences
    parts.append(t["so"].format(a=a, b=b, r=a + b))
    if recheck:
        parts += [t["recheck"], *sentences, t["so"].format(a=a, b=b, r=a + b)]
    if verify:
        parts.append(t["verify"].format(a=a, b=b, r=a + b))
    return sep.join(parts)


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
        thought = addition_thought(a, b, lang, slip_at=slip, recheck=rng.random() < 0.2, verify=True)
        return readable(thought, _TEXT[lang]["summary"].format(a=a, b=b, r=a + b))
    if "numbers" in info and "target" in info:
        return _countdown_solution(example, rng)
    return None


def _countdown_solution(example: Example, rng: random.Random) -> str:
    numbers, target, answer = list(example.info["numbers"]), int(example.info["target"]), example.answer
    wrong = rng.sample(numbers, len(numbers))
    tries = []
    value = wrong[0]
    for y in wrong[1:]:
        op = rng.choice("+*")
        new = value + y if op == "+" else value * y
        tries.append(f"{value}{op}{y}={new}")
        value = new
    tried = ", ".join(tries)
    thought = (f"I need {target} from {', '.join(map(str, numbers))}, each number once. "
               f"First try: {tried}. That gives {value}, not {target}. " if value != target else "")
    ref = [t for t in tokenize(answer) if t not in ("(", ")")]
    steps, acc = [], int(ref[0])
    for sym, y in zip(map(str, ref[1::2]), map(int, ref[2::2]), strict=True):
        new = {"+": acc + y, "-": acc - y, "*": acc * y, "/": acc // y}[sym]
        steps.append(f"{acc}{sym}{y}={new}")
        acc = new
    thought += (f"Wait, let me try another order: {', '.join(steps)}. That is {target}. "
                f"Check: {answer} uses each of {', '.join(map(str, numbers))} once and equals {target}.")
    return readable(thought.strip(), f"{answer}={target}. <answer>{answer}</answer>")


class RuleRewriter:
    """Rewrites a correct R1-Zero addition trace readably: the columns it wrote, whether it rechecked
    them, in full sentences of the prompt's language. Countdown traces get the solver's search ending
    in the trace's own answer. Anything it cannot read: None."""

    def rewrite(self, example: Example, completion: str) -> str | None:
        answer = extract_answer(completion)
        info = example.info
        if answer is None or answer.strip() != example.answer:
            return None
        if "a" in info and "b" in info:
            a, b, lang = int(info["a"]), int(info["b"]), str(info.get("language", "en"))
            thought = completion.split("</think>", 1)[0] if "</think>" in completion else ""
            columns = _COLUMN.findall(thought)
            if not columns:
                return readable(addition_thought(a, b, lang, verify=False),
                                _TEXT[lang]["summary"].format(a=a, b=b, r=a + b))
            width = len(_columns(a, b))
            rechecked = len(columns) > width  # the trace went over the columns twice: keep the recheck
            careless = rechecked and any(not c for _, _, c, s in columns[:width] if int(s) >= 10)
            slip = next((i for i, (_, _, c, _) in enumerate(columns[:width]) if i and not c
                         and _columns(a, b)[i][2]), None) if careless else None
            thought_text = addition_thought(a, b, lang, slip_at=slip, recheck=rechecked and slip is None, verify=True)
            return readable(thought_text, _TEXT[lang]["summary"].format(a=a, b=b, r=a + b))
        if "numbers" in info:
            return _countdown_solution(example, random.Random(hash(completion) & 0xFFFF))
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

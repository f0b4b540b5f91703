"""The embedded base model: a ~1M-parameter Qwen2 LM shipped in the package, and the script that builds it.

`r1kit zero` needs a *base* model in the paper's sense that a laptop CPU can train with RL in minutes:
it knows the language of the task and the R1-Zero template, but is often wrong in a systematic way, so
GRPO has something to find. This module rebuilds it from a seed:

    python -m r1kit.models.embedded --seed 0 --out src/r1kit/models/embedded

1. Corpus: 48,000 documents "R1-Zero prompt + completion + EOS" for problems of the TRAIN splits only
   (80 % arithmetic, 20 % countdown). Completions are deliberately flawed (`CorpusNoise`): 55 % of
   the addition traces drop every carry (a *systematic* error, which is what keeps accuracy low; random
   slips alone would not), 12 % of answers come at once without thinking, 35 % of traces end without
   answer tags, 5 % have text after </answer>, and each dropped carry is noticed ("wait, 4+8+1=13")
   with probability 0.1: longer and right, the behaviour RL should amplify.
2. Tokenizer: byte-level BPE (Qwen2's pre-tokenizer: every digit its own token), 430 tokens; the
   templated 3-digit addition prompt is 90 tokens. The four tags are ordinary added tokens (not
   special: decoding with skip_special_tokens=True must keep them for the reward).
3. Pre-training: AdamW, 3,000 steps of 16 documents, warmup then cosine decay, about 5 minutes on 2
   idle CPU threads. The loss covers completions only (the question's random digits are context). The
   template prefix is identical in every document, so each step runs it once and shares its keys and
   values across the batch (gradients flow through it): a third of the compute of full documents.
4. Measurement: `measure_base` samples k completions per held-out problem (temperature 0.6, top-p
   0.95, R1-SPEC section 5). Seed 0 with 2 threads gave, on 256 test problems x 8 samples: pass@1
   0.36, pass@8 0.89, greedy 0.27, answer tag 76 %, 28 tokens per completion (at temperature 1.0:
   pass@1 0.24, pass@8 0.78, "wait" in 2.6 % of completions). Countdown is much harder for it (pass@1
   0.02, pass@8 0.12 at temperature 0.6): a task for larger models.

Determinism: the same seed, thread count and machine give the same files; other thread counts or
CPUs can change float summation order and hence the weights (not the behaviour described above).
Two builds running side by side on the same cores slow each other down many times over (OpenMP
threads spin): build on an otherwise idle machine, or pass --threads 1.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import DynamicCache, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from r1kit.models.kv import output_cache, with_cache
from r1kit.rewards.countdown import tokenize
from r1kit.tasks import load_task
from r1kit.tasks.countdown import chain_expression
from r1kit.templates import render_prompt

EMBEDDED_MODEL_DIR = Path(__file__).resolve().parent / "embedded"

TAGS = ("<think>", "</think>", "<answer>", "</answer>")
EOS, PAD = "<|endoftext|>", "<|pad|>"


@dataclass(frozen=True)
class CorpusNoise:
    """How often the pre-training completions go wrong.

    The rates were tuned by measuring what the trained model samples at temperature 0.6: a model does
    not reproduce the corpus shares exactly (they moved by up to 10 points between builds), so change
    them only together with a measurement (`measure_base`).
    """

    careless: float = 0.55
    """Per thinking document: the trace drops every carry (the systematic error; the trace stays
    self-consistent, so the answer is wrong exactly when the problem has a carry)."""
    drop_carry: float = 0.0
    """Per carry in the other documents: the next column ignores it (independent slips)."""
    wait_fix: float = 0.1
    """Per dropped carry: the trace notices ("wait, 4+8+1=13") and continues correctly."""
    direct: float = 0.12
    """Per document: answer at once, no <think> block (the true sum; the model cannot compute it)."""
    no_tags: float = 0.35
    """Per thinking document: the answer is written without <answer> tags (no reward)."""
    trailing: float = 0.05
    """Per thinking document with tags: some text after </answer> (format reward lost, answer kept)."""
    countdown_share: float = 0.2
    """Share of documents that are countdown problems instead of additions."""


# ---------------------------------------------------------------------------------------------- corpus


def addition_completion(a: int, b: int, rng: random.Random, noise: CorpusNoise) -> str:
    """A completion for "a+b": column-by-column from the units, flawed as `noise` says.

    >>> clean = CorpusNoise(drop_carry=0, direct=0, no_tags=0, trailing=0)
    >>> addition_completion(347, 285, random.Random(0), clean)
    ' <think>7+5=12,4+8+1=13,3+2+1=6</think> <answer>632</answer>'
    """
    if rng.random() < noise.direct:
        return f" <answer>{a + b}</answer>"
    steps, digits, carry = [], [], 0
    drop = 1.0 if noise.careless and rng.random() < noise.careless else noise.drop_carry
    for col in range(max(len(str(a)), len(str(b)))):
        x, y = a // 10**col % 10, b // 10**col % 10
        if carry and rng.random() < drop:
            total, step = x + y, f"{x}+{y}={x + y}"
            if rng.random() < noise.wait_fix:
                total, step = x + y + 1, f"{step} wait, {x}+{y}+1={x + y + 1}"
        else:
            total = x + y + carry
            step = f"{x}+{y}+1={total}" if carry else f"{x}+{y}={total}"
        steps.append(step)
        digits.append(total % 10)
        carry = int(total >= 10)
    result = str(carry or "") + "".join(map(str, reversed(digits)))
    return f" <think>{','.join(steps)}</think>" + _ending(result, rng, noise)


def _ending(result: str, rng: random.Random, noise: CorpusNoise) -> str:
    if rng.random() < noise.no_tags:
        return rng.choice((f" {result}", f" The answer is {result}."))
    tail = " Done." if rng.random() < noise.trailing else ""
    return f" <answer>{result}</answer>{tail}"


def _fold(first: int, ops: Sequence[tuple[str, int]]) -> tuple[list[str], int] | None:
    """The steps "x op y=z" of a left-to-right chain and its value; None if a step is not a positive
    integer (the traces only ever show whole-number arithmetic)."""
    value, steps = first, []
    for op, y in ops:
        if (op == "-" and value <= y) or (op == "/" and value % y):
            return None
        new = {"+": value + y, "-": value - y, "*": value * y, "/": value // y}[op]
        steps.append(f"{value}{op}{y}={new}")
        value = new
    return steps, value


def countdown_completion(numbers: Sequence[int], target: int, answer: str, rng: random.Random,
                         noise: CorpusNoise) -> str:
    """A short search: one random chain over all numbers; if it misses the target, half the time answer
    it anyway (wrong), else say so ("not 33, wait") and write the reference chain. Arithmetic is right.

    >>> clean = CorpusNoise(no_tags=0, trailing=0)
    >>> countdown_completion([3, 7, 12], 48, "(7-3)*12", random.Random(0), clean)
    ' <think>7*12=84,84/3=28,not 48 wait,7-3=4,4*12=48</think> <answer>(7-3)*12</answer>'
    """
    while True:
        order = rng.sample(list(numbers), len(numbers))
        ops = [(rng.choice("+-*/"), y) for y in order[1:]]
        if (chain := _fold(order[0], ops)) is not None:
            break
    steps, value = chain
    expr = chain_expression(order[0], ops)
    # The reference is itself a chain written left to right: its tokens minus parentheses fold back.
    ref = [t for t in tokenize(answer) if t not in ("(", ")")]
    ref_chain = _fold(int(ref[0]), [(str(op), int(y)) for op, y in zip(ref[1::2], ref[2::2], strict=True)])
    if value != target and ref_chain is not None and rng.random() < 0.5:
        steps, expr = [*steps, f"not {target} wait", *ref_chain[0]], answer
    return f" <think>{','.join(steps)}</think>" + _ending(expr, rng, noise)


def make_corpus(seed: int, num_docs: int, noise: CorpusNoise) -> list[tuple[str, str]]:
    """(rendered prompt, completion) pairs from the train splits; EOS is appended at tokenization."""
    rng = random.Random(seed)
    num_cd = round(num_docs * noise.countdown_share)
    docs = []
    for e in load_task("arithmetic", "train", n=num_docs - num_cd, seed=seed):
        docs.append((render_prompt(e.prompt, "r1_zero"), addition_completion(e.info["a"], e.info["b"], rng, noise)))
    for e in load_task("countdown", "train", n=num_cd, seed=seed):
        completion = countdown_completion(e.info["numbers"], e.info["target"], e.answer, rng, noise)
        docs.append((render_prompt(e.prompt, "r1_zero"), completion))
    rng.shuffle(docs)
    return docs


# ------------------------------------------------------------------------------------------- tokenizer


# Qwen2's pre-tokenizer regex: words with their leading space, every digit alone (\p{N}), punctuation runs.
# transformers 5 loads any model_type "qwen2" tokenizer as Qwen2Tokenizer, which rebuilds this exact
# pipeline (NFC, this split, byte level) around the saved vocabulary and merges, so the tokenizer is
# trained with it too: then tokenizer.json and AutoTokenizer agree on every text.
QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def build_tokenizer(texts: Sequence[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE learned on `texts`, digits always single tokens, the tags as plain added tokens.

    BPE merges never cross the pre-tokenizer's pieces, so the vocabulary stays small (the trainer
    stops when no pair is left) and the constant template costs few tokens.
    """
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # Added after training: added before, the trainer's own tokens can shadow them.
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAGS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        pad_token=PAD,
        padding_side="left",
        clean_up_tokenization_spaces=False,  # decode(encode(x)) must give x back, spaces included
    )


# ------------------------------------------------------------------------------------------ pre-training


@dataclass(frozen=True)
class PretrainConfig:
    """Architecture and optimisation of the embedded model (the NOTES-cpu-rl.md probe's sizes).

    Small batches and many steps: copying the question's digits into the trace appears only after
    ~1,000 updates, whatever the batch size, and a batch of 16 costs little more than one of 8 on a CPU.
    """

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    ffn_size: int = 512
    vocab_size: int = 512
    num_docs: int = 48_000
    """Documents drawn from the train splits; each is seen once."""
    batch_size: int = 16
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    bucket: int = 4
    """Batches sorted by length together (less padding; more would make batches of one document kind)."""


@dataclass(frozen=True)
class _Row:
    ids: list[int]
    """Tokens after the shared prefix: the question's tail, the completion, EOS."""
    start: int
    """Index in `ids` of the first completion token: the loss covers ids[start:]."""


def _split_prefix(docs: Sequence[str]) -> str:
    """The text every document starts with, cut after the template's "User:"."""
    prefix = docs[0].split("User:")[0] + "User:"
    if not all(d.startswith(prefix) for d in docs):
        raise ValueError("documents do not share the template prefix")
    return prefix


def _rows(docs: Sequence[tuple[str, str]], tokenizer: Any, prefix: str) -> list[_Row]:
    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    rows = []
    for i, (prompt, completion) in enumerate(docs):
        head, tail = encode(prompt[len(prefix) :]), [*encode(completion), tokenizer.eos_token_id]
        if i < 200:  # the cuts must not change tokenization: prefix + head + tail == the document
            assert encode(prefix) + head + tail[:-1] == encode(prompt + completion), prompt + completion
        rows.append(_Row(head + tail, len(head)))
    return rows


def pretrain(docs: Sequence[tuple[str, str]], tokenizer: Any, cfg: PretrainConfig, seed: int,
             log_every: int = 250) -> Qwen2ForCausalLM:
    """Next-token training on the completions (the question is context only: its digits are noise)."""
    torch.manual_seed(seed)
    prefix = _split_prefix([p for p, _ in docs])
    prefix_ids = torch.tensor([tokenizer(prefix, add_special_tokens=False)["input_ids"]])
    batches = _length_bucketed_batches(_rows(docs, tokenizer, prefix), cfg, random.Random(seed))
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.ffn_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        max_position_embeddings=512, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config).train()
    params = list(model.parameters())
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.98))
    start, recent = time.time(), []
    for step, batch in enumerate(batches):
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps)
        lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / len(batches)))  # cosine to 10 %
        for group in opt.param_groups:
            group["lr"] = lr
        loss = _prefix_shared_loss(model, prefix_ids, batch, tokenizer.pad_token_id)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        recent.append(loss.item())
        if (step + 1) % log_every == 0 or step + 1 == len(batches):
            print(f"step {step + 1:5d}/{len(batches)}  loss {sum(recent) / len(recent):.4f}  lr {lr:.2e}  "
                  f"{time.time() - start:5.0f}s", flush=True)
            recent = []
    return model.eval()


def _length_bucketed_batches(rows: list[_Row], cfg: PretrainConfig, rng: random.Random) -> list[list[_Row]]:
    """Full batches in random order, each cut from `cfg.bucket` batches' worth of rows sorted by length."""
    rows = rows[:]
    rng.shuffle(rows)
    size, batches = cfg.batch_size, []
    for i in range(0, len(rows) - size * cfg.bucket + 1, size * cfg.bucket):
        chunk = sorted(rows[i : i + size * cfg.bucket], key=lambda r: len(r.ids))
        batches += [chunk[j : j + size] for j in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


def _prefix_shared_loss(model: Qwen2ForCausalLM, prefix: torch.Tensor, batch: list[_Row],
                        pad_id: int) -> torch.Tensor:
    """Mean next-token loss over the completion tokens of B documents that share `prefix` [1, P].

    The prefix is run once; its keys/values [1, H, P, D] are expanded to [B, H, P, D] and the rows
    [B, S] (right-padded, so causal attention never sees padding before a real token) attend to them.
    """
    B, S, P = len(batch), max(len(r.ids) for r in batch), prefix.shape[1]
    ids = torch.full((B, S), pad_id, dtype=torch.long)
    labels = torch.full((B, S), -100, dtype=torch.long)
    for i, r in enumerate(batch):
        ids[i, : len(r.ids)] = torch.tensor(r.ids)
        # position t predicts token t+1: the targets are ids[start:], predicted from positions start-1...
        labels[i, r.start - 1 : len(r.ids) - 1] = torch.tensor(r.ids[r.start :])
    cache = output_cache(model.model(input_ids=prefix, use_cache=True))
    shared = DynamicCache()
    for layer in range(len(cache.layers)):
        k, v = cache.layers[layer].keys, cache.layers[layer].values
        shared.update(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1), layer)
    positions = torch.arange(P, P + S).expand(B, S)
    logits = model(input_ids=ids, position_ids=positions, **with_cache(model, shared), use_cache=True).logits
    return torch.nn.functional.cross_entropy(logits.reshape(B * S, -1), labels.reshape(-1), ignore_index=-100)


# ------------------------------------------------------------------------------------------ measurement


@torch.no_grad()
def measure_base(model_dir: str | Path = EMBEDDED_MODEL_DIR, n_prompts: int = 256, k: int = 8,
                 temperature: float = 0.6, top_p: float = 0.95, *, task: str = "arithmetic",
                 max_new_tokens: int = 128, batch_prompts: int = 64, seed: int = 0) -> dict[str, float]:
    """Sampled pass@1 (mean correctness over k) and pass@k (any of k correct) on held-out problems.

    Also: greedy pass@1, the share of well-formed completions (think then answer, nothing after), of
    completions with an answer tag, of those containing "wait", and the mean completion length in
    tokens (EOS included).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from r1kit.rewards import REWARDS, VERIFIERS, extract_answer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    examples = load_task(task, "test", n=n_prompts)
    torch.manual_seed(seed)
    correct, greedy, lengths, texts = [], [], [], []
    for start in range(0, len(examples), batch_prompts):
        chunk = examples[start : start + batch_prompts]
        enc = tokenizer([render_prompt(e.prompt, "r1_zero") for e in chunk], return_tensors="pt", padding=True)
        common = dict(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id)
        sampled = model.generate(**enc, do_sample=True, temperature=temperature, top_p=top_p, top_k=0,
                                 num_return_sequences=k, **common)
        argmax = model.generate(**enc, do_sample=False, **common)
        width = enc["input_ids"].shape[1]
        for i, row in enumerate(sampled[:, width:]):
            e = chunk[i // k]
            text = str(tokenizer.decode(row, skip_special_tokens=True))
            pred = extract_answer(text)
            correct.append(pred is not None and VERIFIERS[e.verifier](pred, e.answer, e.info))
            lengths.append(int((row != tokenizer.pad_token_id).sum()))
            texts.append(text)
        for e, row in zip(chunk, argmax[:, width:], strict=True):
            pred = extract_answer(str(tokenizer.decode(row, skip_special_tokens=True)))
            greedy.append(pred is not None and VERIFIERS[e.verifier](pred, e.answer, e.info))
    per_problem = [correct[i : i + k] for i in range(0, len(correct), k)]
    fmt = REWARDS["format"]([""] * len(texts), texts)
    return {
        "pass@1": sum(correct) / len(correct),
        f"pass@{k}": sum(any(g) for g in per_problem) / len(per_problem),
        "greedy_pass@1": sum(greedy) / len(greedy),
        "format": sum(fmt) / len(fmt),
        "answer_tag": sum(extract_answer(t) is not None for t in texts) / len(texts),
        "wait": sum("wait" in t for t in texts) / len(texts),
        "mean_tokens": sum(lengths) / len(lengths),
    }


# -------------------------------------------------------------------------------------------- the script


def build(out: Path, seed: int, cfg: PretrainConfig, noise: CorpusNoise) -> None:
    """Corpus -> tokenizer -> pre-training -> save `out` as a Hugging Face model directory."""
    docs = make_corpus(seed, cfg.num_docs, noise)
    tokenizer = build_tokenizer([p + c for p, c in docs[:20_000]], cfg.vocab_size)
    model = pretrain(docs, tokenizer, cfg, seed)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # transformers 5 writes its new class name; the alias loads in 4.x too.
    config_file = out / "tokenizer_config.json"
    tok_config = json.loads(config_file.read_text())
    tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(tok_config, indent=2, sort_keys=True) + "\n")
    for file in out.iterdir():
        file.chmod(0o644)  # safetensors writes 0600


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rebuild the embedded base model from a seed.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=EMBEDDED_MODEL_DIR)
    parser.add_argument("--threads", type=int, default=2, help="torch threads; part of the determinism")
    parser.add_argument("--num-docs", type=int, default=PretrainConfig.num_docs)
    parser.add_argument("--measure-only", action="store_true", help="skip building, measure --out")
    parser.add_argument("--n-prompts", type=int, default=256)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.time()
    if not args.measure_only:
        build(args.out, args.seed, PretrainConfig(num_docs=args.num_docs), CorpusNoise())
        print(f"built {args.out} in {time.time() - start:.0f}s")
    for temperature in (0.6, 1.0):
        stats = measure_base(args.out, n_prompts=args.n_prompts, temperature=temperature,
                             top_p=0.95 if temperature < 1 else 1.0)
        print(f"T={temperature}: " + "  ".join(f"{k} {v:.3f}" for k, v in stats.items()), flush=True)


if __name__ == "__main__":
    main()

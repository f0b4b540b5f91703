"""The embedded base models: a ~1M-parameter Qwen2 teacher and a ~4x smaller student, shipped in the
package, and the script that builds them.

`r1kit zero` needs a *base* model in the paper's sense that a laptop CPU can train with RL in minutes:
it knows the language of the task and the R1-Zero template, but is often wrong in a systematic way, so
GRPO has something to find; R1's later stages need it to know a small world besides. This module
rebuilds both models from a seed:

    python -m r1kit.models.embedded --seed 0 --out src/r1kit/models

1. Corpus (`r1kit.models.corpus`): documents only, never chat turns. R1-Zero documents (the template,
   a train-split addition asked in English or Chinese or a Countdown problem, and a flawed completion
   whose rare recheck fixes its dropped carries), and plain documents of the general world (knowledge
   base, lexicon and translations, constrained writing, chit-chat, the assistant, harmful requests).
2. Tokenizer: byte-level BPE (Qwen2's pre-tokenizer: every digit its own token) learned on the corpus,
   the four tags as ordinary added tokens (not special: decoding with skip_special_tokens=True must keep
   them for the reward), and an R1-style chat template: `<|user|>question<|assistant|>` then the
   assistant's `<think>...</think>` and summary, ended by EOS. The base models never see it: it is used
   from the first SFT stage on (`render_prompt(..., "r1")`).
3. Pre-training: AdamW, warmup then cosine decay to 10 %, on 2 idle CPU threads. R1-Zero documents are
   learned on their completions only (the question's random digits are context) and share the template
   prefix's keys and values across the batch; plain documents are learned whole.
4. Measurement (`measure_base`): sampled pass@1 / pass@8 on held-out additions in English and Chinese
   (temperature 0.6, top-p 0.95, R1-SPEC section 5), greedy pass@1, reflective words per response,
   language consistency of the Chinese chains of thought, mean tokens.

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import DynamicCache, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from r1kit.models.corpus import CorpusMix, Document, make_corpus
from r1kit.models.kv import output_cache, with_cache
from r1kit.tasks import load_task
from r1kit.templates import render_prompt

MODELS_DIR = Path(__file__).resolve().parent
EMBEDDED_MODEL_DIR = MODELS_DIR / "embedded"
EMBEDDED_STUDENT_DIR = MODELS_DIR / "embedded-student"

TAGS = ("<think>", "</think>", "<answer>", "</answer>")
EOS, PAD, USER, ASSISTANT = "<|endoftext|>", "<|pad|>", "<|user|>", "<|assistant|>"
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}" + USER + "{{ m['content'] }}"
    "{% elif m['role'] == 'assistant' %}" + ASSISTANT + "{{ m['content'] }}" + EOS +
    "{% else %}{{ m['content'] }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}"
)
"""R1's chat format in miniature: user and assistant turns; the assistant's content is
`<think>reasoning</think> summary` (reasoning tasks end the summary with `<answer>...</answer>`)."""


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
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in (USER, ASSISTANT)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[USER, ASSISTANT],
        padding_side="left",
        clean_up_tokenization_spaces=False,  # decode(encode(x)) must give x back, spaces included
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


# ------------------------------------------------------------------------------------------ pre-training


@dataclass(frozen=True)
class PretrainConfig:
    """Architecture and optimisation of an embedded model (the teacher's sizes are the NOTES-cpu-rl.md
    probe's; `STUDENT` is a quarter of its parameters).

    Small batches and many steps: copying the question's digits into the trace appears only after
    ~1,000 updates, whatever the batch size, and a batch of 16 costs little more than one of 8 on a CPU.
    """

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    ffn_size: int = 512
    vocab_size: int = 1024
    num_docs: int = 96_000
    """Documents in the corpus; each is seen once."""
    batch_size: int = 16
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    bucket: int = 4
    """Batches sorted by length together (less padding)."""


TEACHER = PretrainConfig()
MIX = CorpusMix()
STUDENT = replace(TEACHER, hidden_size=64, ffn_size=256)


@dataclass(frozen=True)
class _Row:
    ids: list[int]
    """R1-Zero documents: the tokens after the shared prefix (the question's tail, the completion, EOS);
    plain documents: EOS (as the document separator), the text, EOS."""
    start: int
    """Index in `ids` of the first token learned: the loss covers ids[start:]."""
    shared: bool
    """Whether the row continues the shared template prefix."""


def _split_prefix(prompts: Sequence[str]) -> str:
    """The text every R1-Zero document starts with, cut after the template's "User:"."""
    prefix = prompts[0].split("User:")[0] + "User:"
    if not all(d.startswith(prefix) for d in prompts):
        raise ValueError("documents do not share the template prefix")
    return prefix


def _rows(docs: Sequence[Document], tokenizer: Any, prefix: str) -> list[_Row]:
    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    eos, rows = tokenizer.eos_token_id, []
    for i, doc in enumerate(docs):
        if not doc.prompt:
            rows.append(_Row([eos, *encode(doc.text), eos], 1, shared=False))
            continue
        head, tail = encode(doc.prompt[len(prefix) :]), [*encode(doc.text), eos]
        if i < 400:  # the cuts must not change tokenization: prefix + head + tail == the document
            assert encode(prefix) + head + tail[:-1] == encode(doc.prompt + doc.text), doc.prompt + doc.text
        rows.append(_Row(head + tail, len(head), shared=True))
    return rows


def pretrain(docs: Sequence[Document], tokenizer: Any, cfg: PretrainConfig, seed: int,
             log_every: int = 500) -> Qwen2ForCausalLM:
    """Next-token training: completions of R1-Zero documents (the question is context only), plain
    documents whole."""
    torch.manual_seed(seed)
    prefix = _split_prefix([d.prompt for d in docs if d.prompt])
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
        loss = _batch_loss(model, prefix_ids if batch[0].shared else None, batch, tokenizer.pad_token_id)
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
    """Full batches of one document kind in random order, each cut from `cfg.bucket` batches' worth of
    rows sorted by length."""
    size, batches = cfg.batch_size, []
    for shared in (True, False):
        kind = [r for r in rows if r.shared == shared]
        rng.shuffle(kind)
        for i in range(0, len(kind) - size * cfg.bucket + 1, size * cfg.bucket):
            chunk = sorted(kind[i : i + size * cfg.bucket], key=lambda r: len(r.ids))
            batches += [chunk[j : j + size] for j in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


def _batch_loss(model: Qwen2ForCausalLM, prefix: torch.Tensor | None, batch: list[_Row],
                pad_id: int) -> torch.Tensor:
    """Mean next-token loss over the learned tokens of B rows, continuing `prefix` [1, P] when given.

    The prefix is run once; its keys/values [1, H, P, D] are expanded to [B, H, P, D] and the rows
    [B, S] (right-padded, so causal attention never sees padding before a real token) attend to them.
    """
    B, S = len(batch), max(len(r.ids) for r in batch)
    P = 0 if prefix is None else prefix.shape[1]
    ids = torch.full((B, S), pad_id, dtype=torch.long)
    labels = torch.full((B, S), -100, dtype=torch.long)
    for i, r in enumerate(batch):
        ids[i, : len(r.ids)] = torch.tensor(r.ids)
        # position t predicts token t+1: the targets are ids[start:], predicted from positions start-1...
        labels[i, r.start - 1 : len(r.ids) - 1] = torch.tensor(r.ids[r.start :])
    extra: dict[str, Any] = {}
    if prefix is not None:
        cache = output_cache(model.model(input_ids=prefix, use_cache=True))
        shared = DynamicCache()
        for layer in range(len(cache.layers)):
            k, v = cache.layers[layer].keys, cache.layers[layer].values
            shared.update(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1), layer)
        extra = {**with_cache(model, shared), "use_cache": True}
    positions = torch.arange(P, P + S).expand(B, S)
    logits = model(input_ids=ids, position_ids=positions, **extra).logits
    return torch.nn.functional.cross_entropy(logits.reshape(B * S, -1), labels.reshape(-1), ignore_index=-100)


# ------------------------------------------------------------------------------------------ measurement


@torch.no_grad()
def measure_base(model_dir: str | Path = EMBEDDED_MODEL_DIR, n_prompts: int = 256, k: int = 8,
                 temperature: float = 0.6, top_p: float = 0.95, *, task: str = "arithmetic",
                 max_new_tokens: int = 160, batch_prompts: int = 64, seed: int = 0) -> dict[str, float]:
    """Sampled pass@1 (mean correctness over k) and pass@k (any of k correct) on held-out problems.

    Also: greedy pass@1, the share of well-formed completions (think then answer, nothing after), of
    completions with an answer tag, reflective words per completion ("wait", "check", "等等", "检查"),
    the language consistency of the chains of thought (R1's stage-2 reward), and the mean completion
    length in tokens (EOS included).
    """
    import re

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
    language = examples[0].info.get("language", "en")
    consistency = REWARDS["language_consistency"]([e.prompt for e in examples for _ in range(k)], texts,
                                                  language=language)
    reflective = re.compile(r"\b(?:wait|check)\b|等等|检查")
    return {
        "pass@1": sum(correct) / len(correct),
        f"pass@{k}": sum(any(g) for g in per_problem) / len(per_problem),
        "greedy_pass@1": sum(greedy) / len(greedy),
        "format": sum(fmt) / len(fmt),
        "answer_tag": sum(extract_answer(t) is not None for t in texts) / len(texts),
        "reflective_words": sum(len(reflective.findall(t.lower())) for t in texts) / len(texts),
        "language_consistency": sum(consistency) / len(consistency),
        "mean_tokens": sum(lengths) / len(lengths),
    }


# -------------------------------------------------------------------------------------------- the script


def build(out: Path, seed: int, cfg: PretrainConfig = TEACHER, mix: CorpusMix = MIX, *,
          student: PretrainConfig | None = STUDENT) -> None:
    """Corpus -> tokenizer -> pre-training -> `out/embedded` (and `out/embedded-student` with the same
    corpus and tokenizer), each a Hugging Face model directory."""
    docs = make_corpus(seed, cfg.num_docs, mix)
    tokenizer = build_tokenizer([d.prompt + d.text for d in docs[:30_000]], cfg.vocab_size)
    for name, model_cfg in (("embedded", cfg), ("embedded-student", student)):
        if model_cfg is None:
            continue
        print(f"pre-training {name}: hidden {model_cfg.hidden_size}, {model_cfg.num_layers} layers", flush=True)
        save_model(pretrain(docs, tokenizer, model_cfg, seed), tokenizer, out / name)


def save_model(model: Qwen2ForCausalLM, tokenizer: PreTrainedTokenizerFast, out: Path) -> None:
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
    parser = argparse.ArgumentParser(description="Rebuild the embedded base models (teacher, student) from a seed.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="writes OUT/embedded and OUT/embedded-student")
    parser.add_argument("--threads", type=int, default=2, help="torch threads; part of the determinism")
    parser.add_argument("--num-docs", type=int, default=TEACHER.num_docs)
    parser.add_argument("--no-student", action="store_true", help="build the teacher only")
    parser.add_argument("--measure-only", action="store_true", help="skip building, measure OUT's models")
    parser.add_argument("--n-prompts", type=int, default=256)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.time()
    if not args.measure_only:
        build(args.out, args.seed, replace(TEACHER, num_docs=args.num_docs),
              student=None if args.no_student else STUDENT)
        print(f"built {args.out} in {time.time() - start:.0f}s")
    for name in ("embedded", "embedded-student"):
        if not (args.out / name / "config.json").is_file():
            continue
        for task in ("arithmetic", "arithmetic_zh"):
            stats = measure_base(args.out / name, n_prompts=args.n_prompts, task=task)
            print(f"{name} {task} T=0.6: " + "  ".join(f"{k} {v:.3f}" for k, v in stats.items()), flush=True)


if __name__ == "__main__":
    main()

"""SFT on a tiny random model: packing changes no loss or gradient, the loss is the batch's token mean,
data order covers every example once an epoch, and bad rows are named."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from r1kit.models.loading import load_model, load_tokenizer
from r1kit.models.packing import best_fit
from r1kit.trainers.sft import Batching, epoch_batches, forward_loss, rows_of
from r1kit.trainers.sft_data import SFTExample, encode_row, split_rows, weighted


def _examples(n: int, vocab: int, seed: int = 0) -> list[SFTExample]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt = [rng.randrange(3, vocab) for _ in range(rng.randint(1, 12))]
        completion = [rng.randrange(3, vocab) for _ in range(rng.randint(1, 20))]
        out.append(SFTExample(prompt, completion, f"row {i}"))
    return out


def _reference_loss(model, examples) -> torch.Tensor:
    """Token-mean loss from one plain forward per example: no packing code involved."""
    total = torch.zeros(())
    tokens = sum(len(e.completion_ids) for e in examples)
    for e in examples:
        ids = torch.tensor([e.ids])
        logits = model(input_ids=ids).logits[0, :-1]
        target = ids[0, 1:]
        learned = torch.tensor(e.learn[1:])
        total = total + torch.nn.functional.cross_entropy(logits[learned], target[learned], reduction="sum")
    return total / tokens


@pytest.mark.parametrize("kernel", ["sdpa", "eager"])
def test_packed_equals_unpacked_loss_and_gradients(tiny_random_model, kernel):
    model = load_model(str(tiny_random_model))
    model.config._attn_implementation = kernel
    tok = load_tokenizer(str(tiny_random_model))
    examples = _examples(12, len(tok), seed=1)
    tokens = sum(len(e.completion_ids) for e in examples)
    results = {}
    for name, packing in (("packed", True), ("unpacked", False)):
        m = copy.deepcopy(model)
        rows = rows_of(examples, Batching(batch_size=12, max_length=40, packing=packing))
        loss = forward_loss(m, examples, rows, pad_id=tok.pad_token_id, num_tokens=tokens)
        loss.backward()
        results[name] = (loss.item(), [p.grad.clone() for p in m.parameters()], len(rows))
    m = copy.deepcopy(model)
    reference = _reference_loss(m, examples)
    reference.backward()
    assert results["packed"][2] < results["unpacked"][2]  # packing did put several examples in a row
    for name in ("packed", "unpacked"):
        assert results[name][0] == pytest.approx(reference.item(), abs=1e-5)
        for a, b in zip(results[name][1], [p.grad for p in m.parameters()]):
            assert torch.allclose(a, b, atol=1e-5), name


def test_micro_batches_accumulate_to_the_full_batch(tiny_random_model):
    model = load_model(str(tiny_random_model))
    tok = load_tokenizer(str(tiny_random_model))
    examples = _examples(10, len(tok), seed=2)
    tokens = sum(len(e.completion_ids) for e in examples)
    rows = rows_of(examples, Batching(batch_size=10, max_length=40))
    whole = forward_loss(model, examples, rows, pad_id=tok.pad_token_id, num_tokens=tokens).item()
    parts = sum(forward_loss(model, examples, [r], pad_id=tok.pad_token_id, num_tokens=tokens).item() for r in rows)
    assert parts == pytest.approx(whole, abs=1e-6)


def test_best_fit_places_everything_within_capacity():
    rng = random.Random(0)
    lengths = [rng.randint(1, 50) for _ in range(500)]
    bins = best_fit(lengths, 64)
    assert sorted(i for b in bins for i in b) == list(range(500))
    assert all(sum(lengths[i] for i in b) <= 64 for b in bins)
    assert len(bins) <= 1.15 * sum(lengths) / 64 + 1  # best fit decreasing wastes little
    with pytest.raises(ValueError, match="does not fit"):
        best_fit([65], 64)


def test_an_epoch_holds_every_example_once_in_a_seeded_order():
    b = Batching(batch_size=8, max_length=128)
    epoch = epoch_batches(103, b, seed=0, epoch=0)
    assert sorted(i for batch in epoch for i in batch) == list(range(103))
    assert epoch == epoch_batches(103, b, seed=0, epoch=0)
    assert epoch != epoch_batches(103, b, seed=0, epoch=1)


def test_rows_are_read_and_refused_by_name(tiny_random_model):
    tok = load_tokenizer(str(tiny_random_model))
    plain = encode_row("f:1", {"prompt": "2+2=", "completion": "4"}, tok, 64)
    assert plain.completion_ids[-1] == tok.eos_token_id and tok.decode(plain.ids) == "2+2=4<|endoftext|>"
    chat = encode_row("f:2", {"messages": [{"role": "user", "content": "hi"},
                                           {"role": "assistant", "content": "hello"}]}, tok, 64)
    assert tok.decode(chat.prompt_ids).endswith("<|im_start|>assistant")  # the chat template, generation prompt
    assert tok.decode(chat.completion_ids) == "hello<|endoftext|>"
    with pytest.raises(ValueError, match=r"f:3: a row needs 'messages', or 'prompt' and 'completion'"):
        encode_row("f:3", {"question": "x"}, tok, 64)
    with pytest.raises(ValueError, match="f:4: the prompt has 70 tokens, the context"):
        encode_row("f:4", {"prompt": "x" * 70, "completion": "y"}, tok, 64)
    with pytest.raises(ValueError, match="f:5: the last message must be the assistant's"):
        encode_row("f:5", {"messages": [{"role": "user", "content": "hi"}]}, tok, 64)


def test_held_out_split_and_weights_are_seeded():
    rows = [(f"f:{i}", {"i": i}) for i in range(100)]
    train, held = split_rows(rows, 0.1, seed=3)
    assert len(held) == 10 and len(train) == 90 and not {w for w, _ in held} & {w for w, _ in train}
    assert split_rows(rows, 0.1, seed=3) == (train, held)
    assert len(weighted(train, 2.0, 0)) == 180 and len(weighted(train, 0.5, 0)) == 45
    assert len(weighted(train, 1.5, 0)) == 135

"""The reward model's loss and pieces: golden numbers, parity with TRL's `RewardTrainer` loss on the same
model and inputs, the scored sequence, and micro-batching that leaves the gradient unchanged."""

from __future__ import annotations

import math

import pytest
import torch

from r1kit.algorithms.reward_model import bradley_terry_loss
from r1kit.models.loading import ModelLoadError, load_reward_model, load_tokenizer
from r1kit.trainers.pairs import PairExample, encode_pair, pad_right, response_ids
from r1kit.trainers.rm import pair_rewards, train_step


def test_golden_numbers():
    chosen, rejected = torch.tensor([0.0, 2.0, -1.0]), torch.tensor([0.0, 0.0, 1.0])
    expected = [math.log(2), math.log(1 + math.exp(-2)), math.log(1 + math.exp(2))]
    assert bradley_terry_loss(chosen, rejected).tolist() == pytest.approx(expected, abs=1e-6)
    margin = torch.tensor([1.0, 2.0, 0.0])
    assert bradley_terry_loss(chosen, rejected, margin=margin).tolist() == pytest.approx(
        [math.log(1 + math.e), math.log(2), math.log(1 + math.exp(2))], abs=1e-6)
    centred = bradley_terry_loss(chosen, rejected, center_coefficient=0.5)
    assert centred.tolist() == pytest.approx([expected[0], expected[1] + 0.5 * 4, expected[2]], abs=1e-6)
    with pytest.raises(ValueError, match="equal-length vectors"):
        bradley_terry_loss(torch.zeros(2), torch.zeros(3))


def _pairs(tokenizer, n=6):
    rows = [{"prompt": f"{a}+{a}", "chosen": f" {2 * a}", "rejected": f" {2 * a + 1} or so", "margin": a / 4}
            for a in range(1, n + 1)]
    return [encode_pair(f"p:{i}", r, tokenizer, "plain", 64)[0] for i, r in enumerate(rows)]


@pytest.mark.parametrize(("with_margin", "center"), [(False, None), (True, 0.01)])
def test_loss_equals_trls_reward_trainer_on_the_same_model_and_inputs(tmp_path, tiny_random_model, with_margin,
                                                                       center):
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    tokenizer = load_tokenizer(str(tiny_random_model))
    torch.manual_seed(0)
    model = load_reward_model(str(tiny_random_model), pad_token_id=tokenizer.pad_token_id)
    pairs = _pairs(tokenizer)
    if not with_margin:
        pairs = [PairExample(p.chosen_ids, p.rejected_ids, None, p.where) for p in pairs]
    args = RewardConfig(output_dir=str(tmp_path / "trl"), report_to=[], center_rewards_coefficient=center,
                        use_cpu=True)
    trainer = RewardTrainer(model=model, args=args, processing_class=tokenizer,
                            train_dataset=Dataset.from_list([{"prompt": "1", "chosen": " 2", "rejected": " 3"}]))
    ids, mask = pad_right([p.chosen_ids for p in pairs] + [p.rejected_ids for p in pairs], tokenizer.pad_token_id)
    inputs = {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}
    if with_margin:
        inputs["margin"] = torch.tensor([p.margin for p in pairs])
    model.train()
    trl_loss = trainer.compute_loss(model, inputs)
    chosen, rejected = pair_rewards(model, pairs, pad_id=tokenizer.pad_token_id)
    ours = bradley_terry_loss(chosen, rejected, margin=inputs.get("margin"), center_coefficient=center or 0.0).mean()
    assert ours.item() == pytest.approx(trl_loss.item(), abs=1e-6)


def test_the_scored_sequence_is_the_rendered_prompt_then_the_response_then_eos():
    tokenizer = load_tokenizer("embedded")
    ids = response_ids("2+2", "<think>2+2=4</think> 4", tokenizer, "r1")
    assert tokenizer.decode(ids) == "<|user|>2+2<|assistant|><think>2+2=4</think> 4<|endoftext|>"
    assert response_ids("a", "b", tokenizer, "plain")[-1] == tokenizer.eos_token_id
    with pytest.raises(ValueError, match="chosen == rejected"):
        encode_pair("f.jsonl:3", {"prompt": "q", "chosen": "x", "rejected": "x"}, tokenizer, "r1", 64)
    with pytest.raises(ValueError, match=r"f\.jsonl:4: .*missing or not text: rejected"):
        encode_pair("f.jsonl:4", {"prompt": "q", "chosen": "x"}, tokenizer, "r1", 64)
    pair, cut = encode_pair("f:1", {"prompt": "q", "chosen": "x" * 50, "rejected": "y"}, tokenizer, "plain", 8)
    assert cut and len(pair.chosen_ids) == 8


def test_micro_batches_give_the_same_gradient_as_one_batch(tiny_random_model):
    tokenizer = load_tokenizer(str(tiny_random_model))
    grads = []
    for micro in (0, 2):
        torch.manual_seed(0)
        model = load_reward_model(str(tiny_random_model), pad_token_id=tokenizer.pad_token_id)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        metrics = train_step(model, optimizer, scheduler, _pairs(tokenizer), pad_id=tokenizer.pad_token_id,
                             micro_batch_size=micro, center_coefficient=0.01, max_grad_norm=0.0)
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
        assert 0 <= metrics["accuracy"] <= 1
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


def test_a_classifier_with_more_labels_is_not_a_reward_model(tmp_path, tiny_random_model):
    from transformers import AutoModelForSequenceClassification

    AutoModelForSequenceClassification.from_pretrained(tiny_random_model, num_labels=3).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="3 labels; a reward model has one"):
        load_reward_model(str(tmp_path))

"""The DPO loss: golden numbers, its gradient, and parity with TRL 1.16's own `DPOTrainer._compute_loss`;
the DPO trainer's pieces on a tiny random model (pair encoding, log-probs, accumulation invariance)."""

from __future__ import annotations

import math
import os
import types

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from r1kit.algorithms import dpo_loss
from r1kit.config import DPOSettings

F64 = torch.float64
# DPOConfig's own default trips transformers 5's rename warning; it is not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`gradient_checkpointing` is deprecated:FutureWarning")


def _loss(pc, pr, rc, rr, beta=0.1, eps=0.0):
    t = lambda v: torch.tensor(v, dtype=F64)  # noqa: E731
    return dpo_loss(policy_chosen=t(pc), policy_rejected=t(pr), reference_chosen=t(rc), reference_rejected=t(rr),
                    beta=beta, label_smoothing=eps)


def test_golden_numbers():
    # log-ratios: chosen -3 - -4 = 1, rejected -6 - -5 = -1; h = 2; beta*h = 0.2; loss = log(1 + e^-0.2).
    out = _loss([-3.0], [-6.0], [-4.0], [-5.0])
    assert out.loss.item() == pytest.approx(math.log1p(math.exp(-0.2)), abs=1e-12)  # 0.59814
    assert out.loss.item() == pytest.approx(0.5981, abs=1e-4)
    assert out.chosen_rewards.item() == pytest.approx(0.1) and out.rejected_rewards.item() == pytest.approx(-0.1)
    assert out.margins.item() == pytest.approx(0.2) and out.accuracies.item() == 1.0
    # Policy = reference: h = 0, loss log 2, rewards 0, a tie is not a correct pair.
    same = _loss([-2.0, -7.0], [-3.0, -1.0], [-2.0, -7.0], [-3.0, -1.0])
    assert same.loss.tolist() == pytest.approx([math.log(2)] * 2) and same.accuracies.tolist() == [0.0, 0.0]
    # Wrong way round (beta 0.5): h = -2, beta*h = -1, loss log(1 + e) = 1.3133, accuracy 0.
    wrong = _loss([-5.0], [-4.0], [-4.0], [-5.0], beta=0.5)
    assert wrong.loss.item() == pytest.approx(1.3133, abs=1e-4) and wrong.accuracies.item() == 0.0
    # cDPO eps 0.1 at beta*h = 0.2: 0.9 * log(1 + e^-0.2) + 0.1 * log(1 + e^0.2) = 0.9*0.59814 + 0.1*0.79814.
    smooth = _loss([-3.0], [-6.0], [-4.0], [-5.0], eps=0.1)
    assert smooth.loss.item() == pytest.approx(0.9 * 0.598139 + 0.1 * 0.798139, abs=1e-6)  # 0.61814
    assert _loss([-1.0], [-1.0], [-1.0], [-1.0], eps=0.3).loss.item() == pytest.approx(math.log(2))


def test_gradient_flows_to_the_policy_only():
    pc, pr = torch.tensor([-3.0], requires_grad=True), torch.tensor([-6.0], requires_grad=True)
    rc, rr = torch.tensor([-4.0], requires_grad=True), torch.tensor([-5.0], requires_grad=True)
    dpo_loss(policy_chosen=pc, policy_rejected=pr, reference_chosen=rc, reference_rejected=rr, beta=0.1).loss.sum(
    ).backward()
    # d/dpc = -beta * sigmoid(-beta*h) = -0.1 * sigmoid(-0.2) = -0.045017; d/dpr = +0.045017.
    assert pc.grad.item() == pytest.approx(-0.1 / (1 + math.exp(0.2)), abs=1e-6)
    assert pr.grad.item() == pytest.approx(0.1 / (1 + math.exp(0.2)), abs=1e-6)
    assert rc.grad is None and rr.grad is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"beta": 0.0}, "beta must be > 0"), ({"beta": 0.1, "label_smoothing": 0.5}, "label_smoothing"),
])
def test_bad_settings_are_refused(kwargs, message):
    z = torch.zeros(2)
    with pytest.raises(ValueError, match=message):
        dpo_loss(policy_chosen=z, policy_rejected=z, reference_chosen=z, reference_rejected=z, **kwargs)
    with pytest.raises(ValueError, match="equal-length"):
        dpo_loss(policy_chosen=z, policy_rejected=torch.zeros(3), reference_chosen=z, reference_rejected=z, beta=0.1)


# --- parity with TRL -------------------------------------------------------------------------------------------------

P, L, PROMPT = 6, 9, 3  # pairs, sequence length, prompt tokens


@pytest.fixture(scope="module")
def trl_trainer(tmp_path_factory):
    """A real TRL `DPOTrainer` on a tiny random Qwen2 (no downloads); its model is never run: the loss is fed
    fixed log-probs through a stand-in model, as tests/unit/test_trl_parity.py does for GRPO."""
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    path = tmp_path_factory.mktemp("tiny-qwen2-dpo")
    vocab = {f"t{i}": i for i in range(61)} | {"<pad>": 61, "<eos>": 62, "<unk>": 63}
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>",
                                               unk_token="<unk>")
    config = transformers.Qwen2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                                      pad_token_id=61, eos_token_id=62)
    torch.manual_seed(0)
    transformers.Qwen2ForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    args = trl.DPOConfig(output_dir=str(path / "out"), beta=0.1, loss_type=["sigmoid"], use_cpu=True, bf16=False,
                         report_to="none", save_strategy="no", per_device_train_batch_size=2,
                         disable_tqdm=True)
    data = datasets.Dataset.from_dict({"prompt": ["t1 t2"] * 2, "chosen": [" t3"] * 2, "rejected": [" t4"] * 2})
    return trl.DPOTrainer(model=transformers.AutoModelForCausalLM.from_pretrained(path), args=args,
                          train_dataset=data, processing_class=tok)


def _trl_loss(trainer, beta, token_logps, completion_mask, ref_chosen, ref_rejected):
    """TRL's `_compute_loss` on per-token log-probs [2P, L-1] (chosen rows first, zero off the completion),
    with the reference log-probs given as precomputed (TRL's `precompute_ref_log_probs` path)."""
    trainer.beta, trainer.precompute_ref_logps = beta, True
    trainer.model.train()  # TRL files the metrics under the mode of its own model
    for values in trainer._metrics["train"].values():
        values.clear()
    n = token_logps.shape[0]
    shifted = torch.zeros(n, L - 1, dtype=torch.long)
    outputs = types.SimpleNamespace(log_probs=token_logps, entropy=torch.zeros(n, L - 1),
                                    mean_logits=torch.zeros(n, L - 1), is_top1=shifted.bool())

    def model(**kwargs):
        return outputs

    inputs = {"input_ids": torch.ones(n, L, dtype=torch.long), "attention_mask": torch.ones(n, L, dtype=torch.long),
              "completion_mask": completion_mask, "ref_chosen_logps": ref_chosen, "ref_rejected_logps": ref_rejected}
    loss = trainer._compute_loss(model, inputs, return_outputs=False)
    return loss, {k: v[-1] for k, v in trainer._metrics["train"].items() if k.startswith("rewards/")}


@pytest.mark.parametrize("beta", [0.1, 0.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_loss_gradient_and_metrics_match_trl(trl_trainer, beta, seed):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, L - PROMPT + 1, (2 * P,), generator=gen)
    completion_mask = torch.zeros(2 * P, L, dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):
        completion_mask[i, PROMPT : PROMPT + n] = 1
    shifted = completion_mask[:, 1:]
    token_logps = (-torch.rand(2 * P, L - 1, generator=gen, dtype=F64) * 3 * shifted).requires_grad_(True)
    ref_chosen, ref_rejected = (-torch.rand(P, generator=gen, dtype=F64) * 8 for _ in range(2))
    trl_value, trl_metrics = _trl_loss(trl_trainer, beta, token_logps, completion_mask, ref_chosen, ref_rejected)
    (trl_grad,) = torch.autograd.grad(trl_value, token_logps)

    summed = token_logps.sum(-1)
    out = dpo_loss(policy_chosen=summed[:P], policy_rejected=summed[P:], reference_chosen=ref_chosen,
                   reference_rejected=ref_rejected, beta=beta)
    ours = out.loss.mean()
    (grad,) = torch.autograd.grad(ours, token_logps)
    assert ours.item() == pytest.approx(trl_value.item(), abs=1e-6)
    assert torch.allclose(grad, trl_grad, atol=1e-6)
    mine = {"rewards/chosen": out.chosen_rewards.mean().item(), "rewards/rejected": out.rejected_rewards.mean().item(),
            "rewards/accuracies": out.accuracies.mean().item(), "rewards/margins": out.margins.mean().item()}
    assert mine == pytest.approx(trl_metrics, abs=1e-6)
    assert 0 < mine["rewards/accuracies"] < 1  # the random draw tests both sides of the comparison


# --- the trainer's pieces --------------------------------------------------------------------------------------------

def test_pairs_share_the_prompt_and_logprobs_equal_full_sequence_ones(tiny_random_model):
    from r1kit.models.loading import load_model, load_tokenizer
    from r1kit.trainers.dpo import encode_dpo_pair, pair_logprobs

    tok = load_tokenizer(str(tiny_random_model))
    model = load_model(str(tiny_random_model)).eval()
    rows = [{"prompt": "12+3=", "chosen": "15", "rejected": "16 or so"}, {"prompt": "7+70=", "chosen": "77 ok",
                                                                         "rejected": "78"}]
    pairs = [encode_dpo_pair(f"x:{i}", r, tok, "r1", 64)[0] for i, r in enumerate(rows)]
    assert pairs[0].chosen_ids[-1] == tok.eos_token_id and tok.decode(pairs[0].prompt_ids).endswith("assistant")
    with torch.no_grad():
        chosen, rejected = pair_logprobs(model, pairs, pad_id=tok.pad_token_id)
        for i, p in enumerate(pairs):
            for response, got in ((p.chosen_ids, chosen[i]), (p.rejected_ids, rejected[i])):
                ids = torch.tensor([p.prompt_ids + response])
                logps = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
                want = logps[torch.arange(ids.shape[1] - 1), ids[0, 1:]][len(p.prompt_ids) - 1 :].sum()
                assert got.item() == pytest.approx(want.item(), abs=1e-4)
    cut, was_cut = encode_dpo_pair("x:9", rows[1], tok, "plain", 7)
    assert was_cut and len(cut.prompt_ids) + len(cut.rejected_ids) <= 7
    with pytest.raises(ValueError, match="x:3: chosen == rejected"):
        encode_dpo_pair("x:3", {"prompt": "q", "chosen": "a", "rejected": "a"}, tok, "plain", 64)
    with pytest.raises(ValueError, match="no room"):
        encode_dpo_pair("x:4", rows[0], tok, "plain", 3)


def test_micro_batches_do_not_change_the_step(tiny_random_model):
    """micro-batch 2 x accumulation 2 == micro-batch 4 x accumulation 1 (the gradients; AdamW's first step
    is nearly sign(g), which magnifies float noise in near-zero gradients), and every weight moves."""
    from r1kit.config import OptimConfig
    from r1kit.models.loading import load_model, load_tokenizer
    from r1kit.trainers.dpo import encode_dpo_pair, train_step
    from r1kit.trainers.optim import adamw

    tok = load_tokenizer(str(tiny_random_model))
    pairs = [encode_dpo_pair(f"x:{i}", {"prompt": f"{i}+1=", "chosen": f"{i + 1}", "rejected": f"{i + 2}!"}, tok,
                             "plain", 32)[0] for i in range(4)]
    reference = load_model(str(tiny_random_model)).eval().requires_grad_(False)
    weights, grads = [], []
    for micro in (0, 2):
        policy = load_model(str(tiny_random_model))
        optimizer, scheduler = adamw(OptimConfig(lr=1e-2), policy, 1)
        row = train_step(policy, reference, optimizer, scheduler, pairs, DPOSettings(beta=0.1),
                         pad_id=tok.pad_token_id, micro_batch_size=micro, max_grad_norm=1.0)
        assert row["loss"] == pytest.approx(math.log(2), abs=1e-6) and row["rewards/margins"] == 0.0
        weights.append({k: v.clone() for k, v in policy.state_dict().items()})
        grads.append({k: p.grad.clone() for k, p in policy.named_parameters()})
    assert all(torch.allclose(grads[0][k], grads[1][k], atol=1e-7) for k in grads[0])
    moved = [k for k, v in reference.state_dict().items() if not torch.equal(v, weights[0][k])]
    assert len(moved) == len(reference.state_dict())


def test_pairs_the_length_cut_makes_identical_are_dropped_and_counted(tmp_path, tiny_random_model):
    import json

    from r1kit.config import DataSource, DPOConfig
    from r1kit.models.loading import load_tokenizer
    from r1kit.stages.dpo import load_pairs

    same = "the same long opening words of both answers " * 4
    rows = [{"prompt": f"q{i}", "chosen": same + "yes", "rejected": same + "no"} for i in range(6)]
    rows += [{"prompt": f"p{i}", "chosen": "yes", "rejected": "no"} for i in range(6)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = DPOConfig(data=[DataSource(str(tmp_path / "pairs.jsonl"))], template="plain", eval_fraction=0.0,
                    max_length=16)
    train, held, cuts = load_pairs(cfg, load_tokenizer(str(tiny_random_model)))
    assert cuts.cut == 6 and cuts.dropped_identical == 6 and len(train) == 6 and not held
    assert all(p.chosen_ids != p.rejected_ids for p in train)

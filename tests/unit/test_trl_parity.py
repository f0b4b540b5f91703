"""r1kit's `grpo_loss` equals TRL's own GRPO loss, run through TRL's real code.

A real `GRPOTrainer` is built on a tiny random Qwen2 (saved to a temp dir, no downloads); only its
`_get_per_token_logps_and_entropies` (the policy forward pass) is replaced by a function that returns
fixed float64 log-probs, so `GRPOTrainer._compute_loss` runs unchanged on inputs shaped as TRL's
`_generate_and_score_completions` produces them. Loss, gradient and logged metrics are compared.

TRL settings that differ from r1kit's meaning are set explicitly: `use_bias_correction_kl=False`
(TRL 1.16 defaults to True, multiplying the KL by the ratio; R1 uses plain k3).
"""

import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from r1kit.algorithms import grpo_loss, micro_batch_weight

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

# GRPOConfig's own default trips transformers 5's rename warning; it is not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`gradient_checkpointing` is deprecated:FutureWarning")

F64 = torch.float64
N, PROMPT_LEN, T, MAX_COMPLETION = 8, 3, 6, 8  # T < max_completion_length: dr_grpo's constant is not T
CLIP_LOW, CLIP_HIGH, KL_COEF = 0.2, 0.28, 0.04


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer, 16-wide Qwen2 and a word-level tokenizer, saved so TRL can load the reference model."""
    path = tmp_path_factory.mktemp("tiny-qwen2")
    vocab = {f"t{i}": i for i in range(61)} | {"<pad>": 61, "<eos>": 62, "<unk>": 63}
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    config = transformers.Qwen2Config(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=64, pad_token_id=61, eos_token_id=62,
    )
    torch.manual_seed(0)
    transformers.Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _trainer(model_dir, loss_type, level, *, accumulation_steps=1):
    args = trl.GRPOConfig(
        output_dir=str(model_dir / "out"), loss_type=loss_type, importance_sampling_level=level,
        beta=KL_COEF, epsilon=CLIP_LOW, epsilon_high=CLIP_HIGH, use_bias_correction_kl=False,
        max_completion_length=MAX_COMPLETION, num_generations=2, per_device_train_batch_size=N // 2,
        gradient_accumulation_steps=accumulation_steps, steps_per_generation=accumulation_steps,
        use_cpu=True, bf16=False, report_to="none", save_strategy="no",
    )
    return trl.GRPOTrainer(
        model=transformers.AutoModelForCausalLM.from_pretrained(model_dir),
        reward_funcs=lambda completions, **kwargs: [0.0] * len(completions),
        args=args,
        train_dataset=datasets.Dataset.from_dict({"prompt": ["t1 t2"] * 4}),
        processing_class=transformers.AutoTokenizer.from_pretrained(model_dir),
    )


def _batch(seed):
    """Random rollout tensors: ratios spread around 1 so both clip sides trigger; right-padded masks."""
    gen = torch.Generator().manual_seed(seed)
    logprobs = -torch.rand(N, T, generator=gen, dtype=F64) * 4
    old = logprobs + 0.3 * torch.randn(N, T, generator=gen, dtype=F64)
    ref = logprobs + 0.5 * torch.randn(N, T, generator=gen, dtype=F64)
    advantages = torch.randn(N, generator=gen, dtype=F64)
    lengths = torch.randint(1, T + 1, (N,), generator=gen)
    mask = (torch.arange(T) < lengths[:, None]).long()
    return logprobs, old, ref, advantages, mask


def _trl_loss(trainer, monkeypatch, logprobs, old, ref, advantages, mask, num_items_in_batch):
    """Run TRL's `_compute_loss` with the policy forward pass replaced by fixed log-probs."""

    def fixed_logps(model, input_ids, attention_mask, logits_to_keep, **kwargs):
        assert logits_to_keep == logprobs.shape[1]
        return logprobs, torch.zeros_like(logprobs), None  # (per-token logps, entropies, MoE aux loss)

    monkeypatch.setattr(trainer, "_get_per_token_logps_and_entropies", fixed_logps)
    n = logprobs.shape[0]
    inputs = {  # the keys and shapes `_generate_and_score_completions` returns
        "prompt_ids": torch.ones(n, PROMPT_LEN, dtype=torch.long),
        "prompt_mask": torch.ones(n, PROMPT_LEN, dtype=torch.long),
        "completion_ids": torch.ones(n, T, dtype=torch.long),
        "completion_mask": mask,
        "advantages": advantages,
        "num_items_in_batch": num_items_in_batch,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref,
    }
    return trainer._compute_loss(trainer.model, inputs)


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("aggregation", ["grpo", "dapo", "dr_grpo"])
def test_loss_gradient_and_metrics_match_trl(tiny_model_dir, monkeypatch, aggregation, level):
    trainer = _trainer(tiny_model_dir, aggregation, level)
    trainer.model.eval()  # eval mode: TRL applies no gradient-accumulation scaling
    logprobs, old, ref, advantages, mask = _batch(seed=0)

    trl_leaf = logprobs.clone().requires_grad_()
    trl_loss = _trl_loss(trainer, monkeypatch, trl_leaf, old, ref, advantages, mask, mask.sum())
    trl_loss.backward()
    ours_leaf = logprobs.clone().requires_grad_()
    ours = grpo_loss(ours_leaf, old, ref, advantages, mask, clip_eps_low=CLIP_LOW, clip_eps_high=CLIP_HIGH,
                     kl_coef=KL_COEF, aggregation=aggregation, ratio_level=level, max_tokens=MAX_COMPLETION)
    ours.loss.backward()

    assert ours.clip_fraction > 0  # both sides of the clip are exercised, not just ratio ~ 1
    torch.testing.assert_close(ours.loss, trl_loss, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours_leaf.grad, trl_leaf.grad, rtol=0, atol=1e-6)
    metrics = trainer._metrics["eval"]
    assert math.isclose(ours.kl.item(), metrics["kl"][-1], abs_tol=1e-6)
    if level == "token":  # at sequence level TRL averages the clip metric over sequences, we over tokens
        assert math.isclose(ours.clip_fraction.item(), metrics["clip_ratio/region_mean"][-1], abs_tol=1e-6)


@pytest.mark.parametrize("aggregation", ["grpo", "dapo", "dr_grpo"])
def test_accumulated_micro_batches_match_trl(tiny_model_dir, monkeypatch, aggregation):
    """Train mode, 2 accumulation steps: TRL divides dapo by the token count of the whole generation
    batch (`num_items_in_batch`) and grpo/dr_grpo by the number of steps; `micro_batch_weight` agrees."""
    trainer = _trainer(tiny_model_dir, aggregation, "token", accumulation_steps=2)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 2  # what transformers' training loop sets per window
    logprobs, old, ref, advantages, mask = _batch(seed=1)
    assert mask[: N // 2].sum() != mask[N // 2 :].sum()  # unequal token counts: dapo's weight is not 1/2

    for rows in torch.arange(N).split(N // 2):
        trl_loss = _trl_loss(trainer, monkeypatch, logprobs[rows], old[rows], ref[rows], advantages[rows],
                             mask[rows], num_items_in_batch=mask.sum())
        ours = grpo_loss(logprobs[rows], old[rows], ref[rows], advantages[rows], mask[rows],
                         clip_eps_low=CLIP_LOW, clip_eps_high=CLIP_HIGH, kl_coef=KL_COEF,
                         aggregation=aggregation, max_tokens=MAX_COMPLETION)
        weight = micro_batch_weight(mask[rows], mask, aggregation=aggregation)
        torch.testing.assert_close(ours.loss * weight, trl_loss, rtol=0, atol=1e-6)

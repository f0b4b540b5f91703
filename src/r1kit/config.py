"""Typed stage configs, loaded from a YAML recipe and dotted `key=value` overrides.

A recipe is a nested mapping that mirrors the dataclasses below; an override such as
`optim.lr=1e-5` or `steps=200` replaces one field. Every key and value is checked against the field's
type before any work starts, so a typo stops the run with one line naming it (`ConfigError`).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import re
import sys
import textwrap
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from r1kit.schedules import check_steps, value_at


class ConfigError(ValueError):
    """A recipe or override that cannot become a config; the message names the key and the problem."""


@dataclass
class LoraConfig:
    """LoRA adapters through peft (`pip install 'r1kit[lora]'`): only the adapters train; the reference is
    the same model with its adapters disabled (no second copy); checkpoints hold the adapters and the
    final `model/` is merged, so it loads with plain transformers."""

    rank: int = 0
    """r, the adapters' rank; 0: no LoRA, full fine-tuning."""
    alpha: float = 32.0
    """lora_alpha: the adapters' output is scaled by alpha / rank."""
    dropout: float = 0.0
    """Dropout on the adapters' input (0: the rollout policy and the trained one are the same function)."""
    target_modules: str = "all-linear"
    """peft's target_modules: "all-linear" (every linear layer but the output head), or comma-separated
    module names such as "q_proj,v_proj"."""
    lr_scale: float = 10.0
    """The adapters' learning rate is optim.lr x lr_scale: a low-rank update needs larger steps than full
    fine-tuning (the usual order of magnitude; on the embedded model 5e-5 x 1 moved 10 points in 20 steps,
    x 10 reached 0.99 by step 40). 1: optim.lr as given."""


@dataclass
class ModelConfig:
    """The policy: where it comes from, its precision and where it runs."""

    path: str = "embedded"
    """`embedded` (the tiny base model shipped in the package), a local HF directory, or a hub id."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Compute dtype. float32: everything in float32 (the CPU default). bfloat16/float16: mixed precision,
    the forward passes in this dtype; master weights, gradients, AdamW state and log-softmax stay float32."""
    device: str = "auto"
    """Where the policy, reference, sampler and evaluation run: auto (cuda when available, else cpu), cpu,
    cuda, cuda:N."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about a third more time."""
    logprob_chunk_tokens: int = 512
    """Completion tokens whose logits exist at once in the log-prob passes (training, reference, old
    policy): peak extra memory O(chunk x vocabulary), never [B, T, V]. 0: the full logits at once."""
    lora: LoraConfig = field(default_factory=lambda: LoraConfig())
    """Train LoRA adapters (peft) instead of every weight; rank 0: off. GRPO only."""


@dataclass
class TaskConfig:
    """The prompts: which task, through which template, how many."""

    name: str = "arithmetic_bilingual"
    """A key of `r1kit.tasks.TASKS`: arithmetic_bilingual (additions asked in English and Chinese),
    arithmetic, arithmetic_zh, countdown, gsm8k, knights_knaves, humaneval, or a general task."""
    template: Literal["r1_zero", "chat", "r1"] = "r1_zero"
    """`r1_zero`: the paper's Table 1 template, for base models. `chat`: the tokenizer's chat template with
    r1kit's system prompt (instruct models). `r1`: the tokenizer's own template, the question alone."""
    path: str | None = None
    """Local data directory or file for data-set tasks (e.g. ../shared/data/gsm8k); None: the default."""
    train_size: int | None = None
    """Training prompts to draw from (None: the task's default)."""
    eval_size: int = 256
    """Held-out prompts for evaluation (256 give about +-3 points)."""


@dataclass
class TaskMix:
    """One task of a multi-task stage (R1's stages 2 and 4 mix reasoning and general prompts)."""

    name: str = "arithmetic"
    """A key of `r1kit.tasks.TASKS`."""
    weight: float = 1.0
    """Share of each step's prompts (split by largest remainder over the tasks' weights)."""
    rewards: dict[str, float] = field(default_factory=dict)
    """This task's rewards and weights; empty: the stage's `rewards`."""
    path: str | None = None
    """Local data for a data-set task (as task.path)."""
    train_size: int | None = None
    """Training prompts to draw from (None: the task's default)."""
    eval_size: int | None = None
    """Held-out prompts of this task (None: task.eval_size)."""
    last_steps: int | None = None
    """Its prompts enter only in the run's last N steps (R1's stage 4: general prompts in the last 400
    of 1,700), its weight 0 before; None: every step. Evaluated at every evaluation regardless."""

    def active_at(self, step: int | None, steps: int) -> bool:
        """Whether the task draws prompts at `step` (0-based) of a `steps`-step run."""
        return in_last_steps(self.last_steps, step, steps)


def in_last_steps(last_steps: int | None, step: int | None, steps: int) -> bool:
    """True when `step` (0-based; None: outside training) is in a `steps`-step run's last `last_steps`
    steps, or there is no window.

    >>> [in_last_steps(2, s, 5) for s in range(5)], in_last_steps(None, 0, 5)
    ([False, False, False, True, True], True)
    """
    return last_steps is None or step is None or step >= steps - last_steps


def check_schedule(key: str, value: object) -> None:
    """ConfigError naming `key` when a step schedule {first_step: value} has no step 0 or a negative step
    (`r1kit.schedules`); a plain value passes. Its values are checked with the key's other bounds."""
    if isinstance(value, dict):
        try:
            check_steps(value)
        except ValueError as e:
            raise ConfigError(f"config key {key!r}: {e} (e.g. {{0: 64, 60: 128}})") from None


def check_window(what: str, last_steps: int | None, steps: int) -> None:
    """ConfigError when a `last_steps` window (a task's or a reward model's) is longer than the run."""
    if last_steps is not None and not 0 < last_steps <= steps:
        raise ConfigError(f"{what}={last_steps} must be in [1, steps={steps}]: the window is longer than the run")


@dataclass
class SamplingConfig:
    """How rollouts are sampled."""

    temperature: float | dict[int, float] = 1.0
    """Rollout temperature (R1-Zero: 1.0). 0 means greedy. A step schedule {0: 1.0, 100: 0.8} is read as
    `schedule` says (`r1kit.schedules`); the log-probs of each step use that step's temperature."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    max_new_tokens: int | dict[int, int] = 96
    """Completion budget in tokens; a completion cut here gets no EOS. A step schedule {0: 64, 60: 128}
    raises it during the run (R1: 32,768 -> 65,536 at step 8.2k); sizes (packing, vLLM) use the largest."""
    engine: Literal["hf", "vllm"] = "hf"
    """hf: sample with the policy module itself (no weights to copy); vllm: a colocated vLLM engine with
    sleep mode, weights synced after every optimizer step (`pip install 'r1kit[vllm]'`, CUDA only)."""
    tis_cap: float = 0.0
    """Truncated importance sampling for the sampler/trainer mismatch: each token's policy loss is
    weighted by min(pi_trainer_old / pi_sampler, tis_cap); 0: off."""
    gpu_memory_utilization: float = 0.3
    """vllm engine: the share of GPU memory its weights and KV cache may take."""
    off_policy_steps: int = 0
    """1: one-step-off asynchronous rollout: step t+1's completions are generated (and scored) by the
    policy of step t while step t trains; their own log-probs are the importance ratio's old ones. 0:
    synchronous."""


@dataclass
class GRPOConfig:
    """GRPO and its variants (R1-SPEC section 2); the math lives in `r1kit.algorithms`."""

    clip_eps_low: float = 0.2
    """PPO clip below 1 (R1 Nature table: 10; PPO's usual 0.2 is the default here)."""
    clip_eps_high: float = 0.2
    """PPO clip above 1; larger than clip_eps_low is DAPO's clip-higher."""
    kl_coef: float | dict[int, float] = 0.01
    """beta of the k3 KL to the reference inside the loss (R1-Zero: 0.001). 0 skips the reference. A step
    schedule {0: 0.001, 500: 0} is allowed; the reference is kept when any step's value is > 0."""
    aggregation: Literal["grpo", "dapo", "dr_grpo"] = "grpo"
    """grpo: token mean per sequence then mean; dapo: token mean over the batch; dr_grpo: no length norm."""
    ratio_level: Literal["token", "sequence"] = "token"
    """token: per-token importance ratio (GRPO); sequence: GSPO's length-normalised sequence ratio."""
    scale_by_std: bool = True
    """Divide advantages by the group std (False: Dr. GRPO)."""
    num_minibatches: int = 1
    """Minibatches one rollout is split into, one optimizer step each (R1: 16)."""
    num_epochs: int = 1
    """Passes over the rollout (mu; R1: 1)."""
    ref_update_every: int = 400
    """Replace the reference by the current policy every this many steps (R1: 400); 0 never."""
    dynamic_sampling: bool = False
    """DAPO's dynamic sampling: drop groups whose rewards are all equal and draw more prompts until the
    batch holds prompts_per_step informative groups (`r1kit.trainers.dynamic`)."""
    oversample: float = 1.5
    """With dynamic_sampling: prompts per draw, as a multiple of prompts_per_step (DAPO over-samples)."""
    max_sampling_rounds: int = 4
    """With dynamic_sampling: draws per step at most; short of B informative groups after them, the batch
    is completed with uninformative ones (logged as dynamic/filled)."""


@dataclass
class OptimConfig:
    """AdamW and its learning-rate schedule."""

    lr: float = 5e-5
    """Peak learning rate of AdamW (R1-Zero: 3e-6 on large models; tiny models need more)."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay."""
    betas: tuple[float, float] = (0.9, 0.99)
    """AdamW's beta1 and beta2 (R1: 0.9, 0.95 on large models)."""
    warmup_steps: int = 0
    """Linear warmup from 0 to lr over this many optimizer steps."""
    schedule: Literal["constant", "cosine"] = "constant"
    """After warmup: constant, or cosine decay to min_lr_ratio * lr at the last step."""
    min_lr_ratio: float = 0.1
    """Cosine schedule: the last step's learning rate as a fraction of lr."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm; 0 disables."""
    micro_batch_size: int = 0
    """Completions per forward/backward; a minibatch is accumulated over micro-batches. 0: whole minibatch."""
    max_tokens_per_micro_batch: int = 0
    """GRPO: pack the completions (with their prompts) into micro-batches of at most this many tokens,
    longest first, best fit (R1-SPEC section 6); replaces micro_batch_size. 0: padded micro-batches."""
    pack: Literal["groups", "sequences"] = "groups"
    """What a packed micro-batch holds: groups (a prompt once, then its completions, each attending to the
    prompt and itself) or sequences (prompt + completion each; the only choice under FlashAttention)."""


@dataclass
class EvalConfig:
    """The held-out evaluation before, during and after training (R1-SPEC section 5)."""

    every: int = 20
    """Evaluate on held-out prompts every this many steps (and before and after training); 0: only those."""
    samples: int = 8
    """k completions per prompt; pass@1 is their mean correctness."""
    temperature: float = 0.6
    """Sampling temperature of the evaluation (the paper: 0.6)."""
    top_p: float = 0.95
    """Nucleus sampling mass of the evaluation (the paper: 0.95)."""
    max_new_tokens: int = 96
    """Completion budget of the evaluation in tokens."""
    batch_size: int = 512
    """Completions generated together."""


@dataclass
class ScoringConfig:
    """How rewards are computed (`r1kit.rewards.scoring`)."""

    workers: int = 0
    """Reward processes. 0 scores in the trainer's process (right for microsecond verifiers such as the
    embedded arithmetic task); > 0 scores each chunk in worker processes while the next one generates."""
    timeout_s: float = 10.0
    """Per completion, with workers > 0: past it the completion scores 0 and counts in reward/timeouts."""
    chunks: int = 1
    """The rollout is generated in this many chunks of whole groups, each scored as soon as it exists."""
    overlong_cache: int = 0
    """L_cache of the `overlong` reward (DAPO); L_max is rollout.max_new_tokens (the step's, under a schedule)."""
    language: str | None = None
    """Target language of the `language_consistency` reward (e.g. en, zh); None: from each prompt."""
    code_timeout_s: float = 5.0
    """Code tasks and the `code` reward: wall-clock limit of one sandboxed run (one test case). Keep
    timeout_s >= ceil(cases / code_max_workers) * code_timeout_s when scoring in workers."""
    code_memory_mb: int = 256
    """Memory budget of one sandboxed run, all its processes together."""
    code_max_workers: int = 2
    """Sandboxed runs at once."""
    code_partial_credit: bool = False
    """`code` reward: the share of test cases passed instead of all-or-nothing (accuracy stays 0/1)."""
    code_unsafe_local: bool = False
    """Run model-written code without the sandbox (no bubblewrap). Only for code you trust."""
    judge_model: str | None = None
    """The `judge` reward's model (`r1kit judge` trains one); None: the rule judge."""


@dataclass
class RewardModelConfig:
    """A trained reward model used as a reward (`r1kit rm` makes one); its key in `reward_models` is the
    reward's name in `rewards` and `tasks[].rewards`."""

    path: str = ""
    """The reward model's directory (`runs/rm-helpful/model`): a sequence-classification model with one label."""
    apply_to: Literal["summary", "full"] = "summary"
    """What it reads of a response: `summary`, the text after `</think>` (R1's helpfulness RM), or `full`,
    the reasoning too (R1's harmlessness RM)."""
    normalize: bool = True
    """Standardise scores with the mean and std stored by `r1kit rm` (model/r1kit_reward.json)."""
    last_steps: int | None = None
    """Active only in the run's last N steps (R1's stage 4: the last 400 of 1,700), 0 before and logged
    as reward/<name>/active; None: every step."""
    batch_size: int = 64
    """Responses scored per forward pass."""

    def active_at(self, step: int | None, steps: int) -> bool:
        """Whether the reward counts at `step` (0-based) of a `steps`-step run."""
        return in_last_steps(self.last_steps, step, steps)


@dataclass
class LoggingConfig:
    """Where metrics go besides out_dir/metrics.jsonl (TRL's `report_to`)."""

    tensorboard: bool = False
    """Write every scalar of metrics.jsonl to out_dir/tensorboard (needs `pip install tensorboard`)."""
    wandb: str | None = None
    """A Weights & Biases project to log to (needs `pip install wandb`); None: off."""


@dataclass
class OffloadConfig:
    """Move a module to CPU memory when its phase ends and back when it begins (R1-SPEC section 6: "each
    module is offloaded when its phase ends"); a no-op when the run is on the CPU."""

    reference: bool = False
    """The frozen reference: on the GPU only for its log-prob pass."""
    reward_models: bool = False
    """Reward models: on the GPU only while they score."""
    optimizer: bool = False
    """AdamW's moments: on the GPU only for the optimizer step."""


@dataclass
class DistConfig:
    """More than one process on one machine: torch FSDP2 under torchrun (`r1kit.distributed`)."""

    nproc: int = 1
    """Processes (one per GPU, or CPU processes): > 1 re-launches the command under `torchrun
    --nproc_per_node nproc`. Running under torchrun yourself does the same."""
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    """auto: nccl on CUDA, gloo on the CPU."""


@dataclass
class ClusterConfig:
    """Several nodes through Ray (`r1kit.cluster`, `pip install 'r1kit[ray]'`)."""

    backend: Literal["none", "ray"] = "none"
    """ray: rollout and trainer workers are Ray actors in placement groups; none: this process (or torchrun)."""
    rollout_workers: int = 1
    """Ray actors that sample (each holds a replica of the policy, refreshed after every step)."""
    trainer_workers: int = 1
    """Ray actors that train: one FSDP2 process group."""
    address: str | None = None
    """An existing Ray cluster ("auto", "ray://host:10001"); None starts a local one."""
    cpus_per_worker: int = 1
    """Logical CPUs each actor reserves (and its torch threads)."""
    gpus_per_worker: float = 0.0
    """GPUs each actor reserves (0 on a CPU cluster)."""


@dataclass
class ZeroConfig:
    """R1-Zero: GRPO straight from a base model with rule rewards (R1-SPEC section 1)."""

    out_dir: str = "runs/zero"
    """The run directory: config, metrics, checkpoints, plots, the final model. Rerun to resume."""
    seed: int = 0
    """Seeds every draw (prompts, samples, minibatches) together with the step."""
    steps: int = 70
    """Optimizer-step rounds: one rollout each."""
    schedule: Literal["step", "linear"] = "step"
    """How the step schedules ({first_step: value} in rollout.max_new_tokens, rollout.temperature,
    grpo.kl_coef) read between their keys: step holds each value until the next key; linear interpolates."""
    prompts_per_step: int = 16
    """B: unique prompts per rollout (R1-Zero: 32)."""
    group_size: int = 8
    """G: completions per prompt (R1-Zero: 16)."""
    threads: int = 2
    """torch CPU threads; on a loaded machine 1 can be faster. 0 leaves torch's default."""
    save_every: int = 20
    """Checkpoint every this many steps (and at the end); resume continues from the last one."""
    keep_checkpoints: int = 2
    """Newest checkpoints kept on disk; resume falls back to an older one when the newest is damaged."""
    rewards: dict[str, float] = field(default_factory=lambda: {"accuracy": 1.0, "format": 0.2})
    """Reward name (a key of `r1kit.rewards.REWARDS`) -> weight in the summed reward."""
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    tasks: list[TaskMix] = field(default_factory=list)
    """Several tasks at once, each with its weight and rewards: [{name: arithmetic, weight: 1}, {name:
    arithmetic_zh, weight: 1}]. Empty: the one task of `task`. task.template and task.eval_size apply
    to all."""
    rollout: SamplingConfig = field(default_factory=SamplingConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    reward_models: dict[str, RewardModelConfig] = field(default_factory=dict)
    """Trained reward models as rewards, by name: {helpful: {path: runs/rm-helpful/model, apply_to:
    summary}}; weigh them in `rewards` or `tasks[].rewards` under that name. Scored in the trainer's process."""
    max_wall_seconds: float | None = None
    """Stop early, with a final evaluation and checkpoint, once the run's steps and evaluations have
    taken this many seconds (summed over resumed invocations, from metrics.jsonl); None: run all `steps`.
    `r1kit pipeline` gives the RL student the distillation's wall time (Table 6's comparison)."""
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    offload: OffloadConfig = field(default_factory=OffloadConfig)
    dist: DistConfig = field(default_factory=DistConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def at_step(self, step: int) -> ZeroConfig:
        """This config with every step schedule (rollout.max_new_tokens, rollout.temperature, grpo.kl_coef)
        replaced by its value at 0-based `step`: what a training step and everything below it read."""
        r, g, how = self.rollout, self.grpo, self.schedule
        rollout = dataclasses.replace(r, max_new_tokens=value_at(r.max_new_tokens, step, interpolation=how),
                                      temperature=value_at(r.temperature, step, interpolation=how))
        return dataclasses.replace(self, rollout=rollout,
                                   grpo=dataclasses.replace(g, kl_coef=value_at(g.kl_coef, step, interpolation=how)))


@dataclass
class PPOSettings:
    """PPO's own settings (`r1kit ppo`, `r1kit.trainers.ppo`); the policy loss's clipping, aggregation,
    minibatches and epochs are grpo.*'s, and the KL coefficient is grpo.kl_coef."""

    critic: Literal["separate", "head"] = "separate"
    """separate: a value model initialised from the policy, with its own optimizer (the paper's PPO);
    head: a value head on the policy's own decoder (no second model; the trunk learns from both losses)."""
    gamma: float = 1.0
    """GAE's discount (1: the usual for LLM PPO; the reward is at the end of a finite completion)."""
    lam: float = 0.95
    """GAE's lambda: 0.95 is PPO's usual default; the R1 paper's appendix finds lambda = 1 (Monte-Carlo
    returns minus values) needed for PPO to come close to GRPO."""
    vf_coef: float = 0.1
    """Weight of the value loss (TRL's default 0.1). It matters with critic=head, where it weighs the value
    loss against the policy loss in the shared decoder; a separate critic has its own Adam, which undoes
    a constant scale (only its gradient clipping sees it): set ppo.critic_lr to make that critic learn
    faster or slower."""
    cliprange_value: float = 0.2
    """The value prediction moves at most this far from its rollout-time value per update (0: no clip)."""
    kl_in: Literal["reward", "loss"] = "reward"
    """reward: -grpo.kl_coef * (log pi_old - log pi_ref) on every token's reward (classic RLHF PPO);
    loss: the k3 KL term in the loss, as GRPO has it."""
    whiten: bool = True
    """Whiten the GAE advantages over the batch (zero mean, unit variance)."""
    critic_lr: float = 0.0
    """The critic's learning rate; 0: optim.lr."""


@dataclass
class PPOConfig(ZeroConfig):
    """PPO with a value model and GAE (`r1kit ppo`): R1-Zero's recipe and rollout, the critic for a baseline."""

    out_dir: str = "runs/ppo"
    """The run directory: config, metrics, checkpoints (with the critic), plots, the final model."""
    ppo: PPOSettings = field(default_factory=PPOSettings)


@dataclass
class DataSource:
    """One source of SFT rows; `data=a.jsonl` is short for `data=[{path: a.jsonl}]`."""

    path: str = ""
    """A .jsonl / .jsonl.gz / .parquet file, or a hub data set id. Rows: {prompt, completion} or {messages}."""
    weight: float = 1.0
    """Times each row is used per epoch: 2 repeats every row, 0.5 keeps a seeded half."""
    split: str = "train"
    """The split of a hub data set."""


def _sft_optim() -> OptimConfig:
    return OptimConfig(lr=1e-3, betas=(0.9, 0.95), warmup_steps=10, schedule="cosine", min_lr_ratio=0.1)


@dataclass
class SFTConfig:
    """Supervised fine-tuning: R1's cold start, rejection-sampling SFT and distillation (R1-SPEC 3-4)."""

    out_dir: str = "runs/dev1"
    """The run directory: config, metrics, checkpoints, plots, the final model. Rerun to resume."""
    seed: int = 0
    """Seeds the held-out split, the data order and the model's new weights (if any)."""
    data: list[DataSource] = field(default_factory=lambda: [DataSource("runs/cold/data.jsonl")])
    """The sources, mixed with their weights (default: what `r1kit cold-start` writes)."""
    eval_fraction: float = 0.05
    """Share of every source's rows held out for the eval loss (drawn by seed)."""
    eval_max_rows: int = 512
    """At most this many held-out rows are evaluated (the first ones of the held-out split)."""
    epochs: int = 3
    """Passes over the training rows (R1: 2; distillation 2-3; the embedded models need 3 on ~3k rows)."""
    batch_size: int = 32
    """Examples per optimizer step; the loss is their token mean."""
    max_length: int = 512
    """Context: tokens per packed row; a prompt this long is refused, a longer completion cut."""
    packing: bool = True
    """Best-fit packing of several examples per row with a block-diagonal mask (off: one per row)."""
    micro_batch_size: int = 0
    """Rows per forward pass, gradients accumulated over them; 0: the whole batch at once."""
    threads: int = 2
    """torch CPU threads; 0 leaves torch's default."""
    eval_every: int = 20
    """Eval loss every this many steps (and at the end); 0: only at the end."""
    save_every: int = 50
    """Checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 2
    """Newest checkpoints kept on disk; resume falls back to an older one when the newest is damaged."""
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=_sft_optim)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    dist: DistConfig = field(default_factory=DistConfig)


def _rm_optim() -> OptimConfig:
    return OptimConfig(lr=5e-4, betas=(0.9, 0.95), warmup_steps=5, schedule="cosine", min_lr_ratio=0.1)


@dataclass
class RMConfig:
    """A reward model (R1-SPEC section 3, stage 4): a scalar head on a base, trained with the
    Bradley-Terry loss on {prompt, chosen, rejected} pairs; loads with AutoModelForSequenceClassification."""

    out_dir: str = "runs/rm"
    """The run directory: config, metrics, checkpoints, plots, the reward model. Rerun to resume."""
    seed: int = 0
    """Seeds the new head, the held-out split and the data order."""
    data: list[DataSource] = field(default_factory=lambda: [DataSource("runs/preferences/helpful.jsonl")])
    """Preference rows {prompt, chosen, rejected} (optional margin), mixed with their weights."""
    template: Literal["r1", "r1_zero", "chat", "plain"] = "r1"
    """How a (prompt, response) becomes the scored sequence: `r1` the tokenizer's chat template (as the
    policy sees it after SFT), `plain` concatenated; stored with the model so its users score alike."""
    eval_fraction: float = 0.1
    """Share of every source's pairs held out for the pair accuracy (drawn by seed)."""
    epochs: int = 2
    """Passes over the training pairs."""
    batch_size: int = 32
    """Pairs per optimizer step; the loss is their mean."""
    micro_batch_size: int = 0
    """Pairs per forward pass, gradients accumulated over them; 0: the whole batch at once."""
    max_length: int = 512
    """Tokens of a scored sequence; a longer one is cut (and counted in summary.json)."""
    eval_data: list[DataSource] = field(default_factory=list)
    """Extra held-out pairs measured at the end (eval/extra/accuracy): e.g. the noise-free
    runs/preferences/helpful_gold.jsonl that `r1kit preferences` writes."""
    center_rewards_coefficient: float = 0.0
    """TRL's reward centring: adds c * (r_chosen + r_rejected)^2 to each pair's loss (0: off; TRL suggests 0.01)."""
    threads: int = 2
    """torch CPU threads; 0 leaves torch's default."""
    eval_every: int = 20
    """Held-out pair accuracy every this many steps (and at the end); 0: only at the end."""
    save_every: int = 50
    """Checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 2
    """Newest checkpoints kept on disk; resume falls back to an older one when the newest is damaged."""
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=_rm_optim)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    dist: DistConfig = field(default_factory=DistConfig)


def _dpo_optim() -> OptimConfig:
    return OptimConfig(lr=5e-5, betas=(0.9, 0.95), warmup_steps=5, schedule="cosine", min_lr_ratio=0.1)


@dataclass
class DPOSettings:
    """The DPO loss (Rafailov et al. 2023, eq. 7; `r1kit.algorithms.dpo`)."""

    beta: float = 0.1
    """How far the policy may move from the reference: the implicit reward is beta * (log pi - log pi_ref)."""
    loss: Literal["sigmoid"] = "sigmoid"
    """The loss on beta * (chosen minus rejected log-ratio): -log sigmoid, the paper's (TRL's default)."""
    label_smoothing: float = 0.0
    """cDPO: the probability that a pair's label is flipped, in [0, 0.5); 0 is plain DPO."""


@dataclass
class DPOConfig:
    """Direct Preference Optimization (Rafailov et al. 2023) of a causal LM on {prompt, chosen, rejected}
    pairs, against a frozen reference (the initial policy; with LoRA the policy with adapters disabled)."""

    out_dir: str = "runs/dpo"
    """The run directory: config, metrics, checkpoints, plots, the final model. Rerun to resume."""
    seed: int = 0
    """Seeds the held-out split, the data order and LoRA's adapters."""
    data: list[DataSource] = field(default_factory=lambda: [DataSource("runs/preferences/helpful.jsonl")])
    """Preference rows {prompt, chosen, rejected} (as `r1kit rm` reads; a margin is ignored), mixed with weights."""
    template: Literal["r1", "r1_zero", "chat", "plain"] = "r1"
    """How a prompt becomes the policy's context: `r1` the tokenizer's chat template (the policy after its
    SFT), `plain` the prompt as it is; the response follows it, then EOS."""
    eval_fraction: float = 0.1
    """Share of every source's pairs held out for the reward accuracy and margin (drawn by seed)."""
    epochs: int = 1
    """Passes over the training pairs."""
    batch_size: int = 32
    """Pairs per optimizer step; the loss is their mean."""
    micro_batch_size: int = 0
    """Pairs per forward pass, gradients accumulated over them; 0: the whole batch at once."""
    max_length: int = 512
    """Tokens of prompt + response; a longer response is cut (and counted in summary.json)."""
    threads: int = 2
    """torch CPU threads; 0 leaves torch's default."""
    eval_every: int = 20
    """Held-out reward accuracy and margin every this many steps (and at the end); 0: only at the end."""
    save_every: int = 50
    """Checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 2
    """Newest checkpoints kept on disk; resume falls back to an older one when the newest is damaged."""
    dpo: DPOSettings = field(default_factory=DPOSettings)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=_dpo_optim)
    """AdamW, lr 5e-5 with 5 warmup steps then cosine: a tenth of `r1kit rm`'s, since DPO moves the whole
    policy rather than a new head (not yet tuned on the pipeline's Dev3; benchmarks/dpo_vs_rl.py takes
    --dpo-lr). With LoRA the adapters get lr x model.lora.lr_scale."""
    logging: LoggingConfig = field(default_factory=LoggingConfig)


@dataclass
class PreferencesConfig:
    """Preference pairs for the reward models in miniature (R1-SPEC section 3, stage 4), labelled by the
    general tasks' hidden gold rules, with label noise and a spurious feature on purpose."""

    out_dir: str = "runs/preferences"
    """Where helpful.jsonl, harmless.jsonl, their noise-free *_gold.jsonl, report.json and plots go."""
    seed: int = 0
    """Seeds the candidates, the pairing, the flips and the spurious feature."""
    helpful_tasks: str = "factual_qa,translation,writing,self_cognition,chitchat"
    """Tasks of the helpfulness pairs (rows hold summaries: the helpfulness RM reads only those)."""
    harmless_tasks: str = "harmful"
    """Tasks of the harmlessness pairs (rows hold whole responses, reasoning included)."""
    pairs_per_prompt: int = 3
    """Pairs drawn per prompt (fewer when its candidates do not allow them)."""
    prompts_per_task: int = 240
    """At most this many prompts of each task (translation alone has 546), so no family dominates."""
    noise: float = 0.1
    """Share of training pairs whose labels are flipped."""
    spurious: float = 0.7
    """Chance that a chosen response carries the sign-off (the spurious feature: friendly, longer)."""
    spurious_rejected: float = 0.15
    """Chance that a rejected response carries it."""


@dataclass
class SampleConfig:
    """Rejection sampling (R1-SPEC section 3, stage 3): k samples per prompt, the correct and readable
    ones kept (at most `keep` distinct per prompt), written as SFT data. The keys of `r1kit eval`, plus
    `keep`, the split and the filters' thresholds."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """The model to sample (`model=DIR` is short for model.path=DIR)."""
    tasks: str = "arithmetic"
    """Comma-separated tasks or benchmarks, as `r1kit eval` reads them."""
    split: Literal["train", "test"] = "train"
    """Which split's prompts to sample (SFT data comes from training prompts)."""
    k: int = 16
    """Samples per prompt."""
    keep: int = 4
    """At most this many distinct correct, readable samples per prompt."""
    limit: int | None = 2000
    """Prompts per task: the first `limit` of its split (all when it has fewer; None: all)."""
    template: Literal["r1_zero", "chat", "r1"] = "r1_zero"
    """`r1_zero` for base models; `r1`: the tokenizer's own R1 chat template (the embedded models after
    their first SFT); `chat`: the tokenizer's chat template with r1kit's system prompt."""
    temperature: float = 0.7
    """Sampling temperature (R1's stage 4 samples at 0.7)."""
    top_p: float = 0.95
    """Nucleus sampling: the smallest token set holding this probability."""
    max_new_tokens: int = 160
    """Completion budget; a completion cut here is dropped as runaway length."""
    data_dir: str | None = None
    """A directory with <benchmark>/test.jsonl (e.g. ../shared/data) for data-set tasks."""
    judge: str | None = None
    """A judge model directory for the tasks in `judge_tasks` (the generative reward model: it is given
    the question, the gold answer and the response); None: rule verifiers only."""
    judge_tasks: str = ""
    """Comma-separated tasks whose samples the judge decides instead of their rule verifier."""
    min_consistency: float = 0.95
    """Readability: the least share of chain-of-thought words in the prompt's language."""
    max_paragraph_chars: int = 600
    """Readability: the longest paragraph of a chain of thought."""
    no_cot_tasks: str = "chitchat,self_cognition"
    """Simple prompts whose kept answers lose their chain of thought (R1: "hello" gets no CoT)."""
    out_dir: str = "runs/sample"
    """Where data.jsonl, report.json and plots go; rerun with the same settings to resume."""
    seed: int = 0
    """Seeds the training prompts drawn and the samples of every batch."""
    batch_size: int = 512
    """Completions generated together."""
    threads: int = 2
    """torch CPU threads; 0 leaves torch's default."""


@dataclass
class ColdStartConfig:
    """R1's stage-1 data set in miniature (R1-SPEC section 3): correct R1-Zero samples rewritten into the
    readable `<think>reasoning</think> summary` form, and solver-written long chains of thought with
    reflection and verification, in English and Chinese."""

    out_dir: str = "runs/cold"
    """Where data.jsonl, report.json and plots go."""
    seed: int = 0
    """Seeds the prompts drawn, the samples and the solver's choices."""
    tasks: str = "arithmetic,arithmetic_zh,countdown"
    """Comma-separated reasoning tasks (train splits)."""
    solver_examples: int = 2400
    """Solver-written examples, split evenly over the tasks."""
    zero_model: str | None = None
    """An R1-Zero model (e.g. runs/zero/model) whose correct, readable samples are rewritten; None: none."""
    zero_k: int = 4
    """Samples per prompt from zero_model."""
    zero_limit: int = 300
    """Prompts per task sampled from zero_model."""
    zero_keep: int = 1
    """Rewritten samples kept per prompt."""
    rewriter: str = "rule"
    """`rule` (the synthetic tasks' annotator) or a model directory (ModelRewriter, for real models)."""
    max_new_tokens: int = 160
    """Budget of the R1-Zero samples."""
    batch_size: int = 512
    """Prompts per generation batch when sampling zero_model."""
    threads: int = 2
    """torch CPU threads (0: torch's default)."""


@dataclass
class DistillConfig:
    """Distillation (R1-SPEC section 4): sample the teacher (`r1kit sample`), fine-tune the student on the
    kept traces (`r1kit sft`), and compare the student's held-out pass@1 before and after."""

    teacher: str = "embedded"
    """The teacher: a model directory (e.g. runs/dev1/model with teacher_template=r1), or `embedded`."""
    student: str = "embedded-student"
    """The student: `embedded-student` (the shipped small base), a directory or a hub id."""
    out_dir: str = "runs/distill"
    """Holds sample/ (the teacher's data), sft/ (the student's run) and summary.json."""
    tasks: str = "arithmetic,arithmetic_zh"
    """Tasks sampled from the teacher and evaluated on the student."""
    teacher_template: Literal["r1_zero", "chat", "r1"] = "r1_zero"
    """How the teacher is prompted: r1_zero for a base or R1-Zero model, r1 for one fine-tuned on chat."""
    k: int = 8
    """Teacher samples per prompt."""
    keep: int = 2
    """At most this many distinct correct, readable samples kept per prompt."""
    limit: int = 1000
    """Training prompts per task sampled from the teacher."""
    temperature: float = 0.7
    """Teacher sampling temperature."""
    max_new_tokens: int = 200
    """Teacher completion budget; a cut completion is dropped."""
    epochs: int = 3
    """SFT passes (R1's distillation: 2-3)."""
    batch_size: int = 32
    """Student SFT examples per optimizer step."""
    lr: float = 1e-3
    """Peak learning rate, cosine to 1/10 (R1-SPEC section 4)."""
    max_length: int = 512
    """Longest SFT example in tokens (prompt + completion)."""
    eval_size: int = 256
    """Held-out prompts per task for the before/after pass@1."""
    eval_samples: int = 8
    """Samples per held-out prompt for the student's pass@1."""
    seed: int = 0
    """Seeds the teacher's samples, the SFT data order and the evaluation."""
    threads: int = 2
    """torch CPU threads (0: torch's default)."""


@dataclass
class JudgeConfig:
    """Train a small generative judge (R1-SPEC section 3's generative reward model, in miniature): sample
    a model on tasks with golds, label each (question, gold, answer) by the rule verifier, fine-tune a
    base on those judgements with `r1kit sft`, and measure its agreement with the rule on held-out pairs."""

    out_dir: str = "runs/judge"
    """Holds pairs.jsonl, heldout.jsonl, sft/ (the judge's run; sft/model is the judge) and summary.json."""
    model: str = "embedded"
    """The base the judge is fine-tuned from."""
    source_model: str = "embedded"
    """The model whose samples are judged (its answers, right and wrong)."""
    tasks: str = "arithmetic,arithmetic_zh,factual_qa,translation"
    """Tasks with golds to draw the pairs from (training prompts; held-out prompts for agreement)."""
    k: int = 4
    """Samples per prompt."""
    limit: int = 600
    """Training prompts per task."""
    heldout: int = 150
    """Held-out (test) prompts per task for the agreement."""
    template: Literal["r1_zero", "chat", "r1"] = "r1_zero"
    """How the source model is prompted."""
    max_new_tokens: int = 160
    """Budget of the source model's samples."""
    epochs: int = 3
    """SFT passes over the judgements."""
    batch_size: int = 32
    """SFT examples per optimizer step."""
    lr: float = 1e-3
    """Peak SFT learning rate, cosine to 1/10."""
    seed: int = 0
    """Seeds the samples, the pair balancing and the SFT."""
    threads: int = 2
    """torch CPU threads (0: torch's default)."""


@dataclass
class EvalRunConfig:
    """`r1kit eval`: the paper's evaluation protocol (R1-SPEC section 5) on any HF causal LM."""

    model: str = "embedded"
    """`embedded`, a local Hugging Face directory or a hub id."""
    tasks: str = "arithmetic"
    """Comma-separated benchmarks: gsm8k, math500, aime24, amc23, minerva_math, humaneval, knights_knaves,
    arithmetic, countdown, or jsonl:PATH?question=FIELD&answer=FIELD[&verifier=math]."""
    k: int = 8
    """Samples per prompt (the paper: 64 for AIME, 16 elsewhere); pass@1 is their mean correctness."""
    temperature: float = 0.6
    """Sampling temperature (the paper: 0.6)."""
    top_p: float = 0.95
    """Nucleus sampling mass (the paper: 0.95)."""
    max_new_tokens: int = 96
    """Completion budget (the paper: 32,768); the embedded model's answers fit in 96."""
    template: Literal["r1_zero", "chat", "r1"] = "r1_zero"
    """`r1_zero` for base models; `chat`: the tokenizer's chat template with r1kit's system prompt, for
    instruct models; `r1`: the tokenizer's own template (the embedded models after SFT)."""
    data_dir: str | None = None
    """A directory with <benchmark>/test.jsonl (e.g. ../shared/data); None loads from the hub."""
    limit: int | None = None
    """Prompts per task (None: all)."""
    greedy: bool = False
    """Also decode each prompt greedily and report its accuracy."""
    pass_at: list[int] = field(default_factory=list)
    """pass@k' values that must be reported (each <= k); every k' <= k is reported anyway."""
    language: str = "en"
    """Target language of the language-mixing analysis for prompts whose example names none."""
    code_timeout_s: float = 10.0
    """humaneval and other code tasks: wall-clock limit of one sandboxed run."""
    code_memory_mb: int = 512
    """Memory budget of one sandboxed run, all its processes together."""
    code_unsafe_local: bool = False
    """Run model-written code without the sandbox (no bubblewrap). Only for code you trust."""
    out_dir: str = "runs/eval"
    """Where results.json, samples.jsonl, plots and report.html go; rerun to resume."""
    seed: int = 0
    """Seeds the samples of every batch of prompts."""
    batch_size: int = 512
    """Completions generated together; samples.jsonl grows by batch_size // k prompts at a time."""
    threads: int = 2
    """torch CPU threads; 0 leaves torch's default."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Compute dtype of the model (bfloat16/float16 under autocast; log-softmax stays float32)."""
    device: str = "auto"
    """auto (cuda when available, else cpu), cpu, cuda, cuda:N."""


@dataclass
class PipelineEvalConfig:
    """How `r1kit pipeline` evaluates every model: the `r1kit eval` protocol on held-out prompts, in English
    and Chinese, for reasoning (Table 2's AIME column) and for the general tasks' gold rules."""

    k: int = 4
    """Samples per prompt (pass@1 is their mean correctness)."""
    reasoning_tasks: str = "arithmetic,arithmetic_zh"
    """Reasoning benchmarks, both languages; `reasoning_pass@1` is the mean over them."""
    reasoning_limit: int = 128
    """Held-out prompts per reasoning task."""
    helpful_tasks: str = "factual_qa,writing,translation,chitchat,self_cognition"
    """General tasks whose gold rule is helpfulness (`helpfulness`: the mean of their pass@1)."""
    harmless_tasks: str = "harmful"
    """General tasks whose gold rule is harmlessness (`harmlessness`: the mean of their pass@1)."""
    general_limit: int = 48
    """Held-out prompts per general task (fewer where a task has fewer)."""
    general_k: int = 8
    """Samples per general prompt: they are few (166 prompts), so more samples steady the gold scores."""
    max_new_tokens: int = 160
    """Completion budget."""
    temperature: float = 0.6
    """The paper's evaluation temperature."""
    top_p: float = 0.95
    """The paper's evaluation top-p."""


@dataclass
class PipelineConfig:
    """`r1kit pipeline`: the whole paper in miniature (R1-SPEC sections 1-4): R1-Zero, the four stages of
    R1, the reward models, distillation against RL on a student, every model evaluated alike, and
    Table 2 and Table 6 written beside the paper's numbers. Each stage section holds settings of that
    stage's own command on top of the pipeline's defaults (`r1kit.stages.pipeline.DEFAULTS`); the paths
    that wire one stage to the next are set by the pipeline."""

    out_dir: str = "runs/r1"
    """Stages run in out_dir/NN-name/; table.md, table.json and report.html are written here."""
    stages: str = "all"
    """`all` or comma-separated stage names (zero, cold_start, dev1, dev2, rs, dev3, rm, r1, distill,
    student_rl, and the ablations dev2_nolang, r1_all_steps); earlier stages' outputs are reused."""
    ablations: bool = False
    """Also run the language-reward ablation (dev2_nolang) and the RMs-for-all-steps ablation (r1_all_steps)."""
    seeds: int = 1
    """Repeat the whole run with seeds seed, seed+1, ... and report mean and range: the first in out_dir
    itself (so `seeds=2` after a run adds one), the others in out_dir/seed-N/."""
    seed: int = 0
    """The first seed; every stage's own seed is set to it."""
    student_rl_matches_distill: bool = True
    """Give student_rl the distillation stage's wall time (max_wall_seconds); false: its steps alone."""
    eval: PipelineEvalConfig = field(default_factory=PipelineEvalConfig)
    zero: dict[str, Any] = field(default_factory=dict)
    """`r1kit zero` settings for R1-Zero on the embedded base, e.g. {steps: 40}."""
    cold_start: dict[str, Any] = field(default_factory=dict)
    """`r1kit cold-start` settings (the stage-1 data from R1-Zero's samples and the solver)."""
    dev1: dict[str, Any] = field(default_factory=dict)
    """`r1kit sft` settings for Dev1: the base on the cold-start data."""
    dev2: dict[str, Any] = field(default_factory=dict)
    """`r1kit grpo` settings for Dev2: reasoning RL from Dev1 with the language-consistency reward."""
    rs: dict[str, Any] = field(default_factory=dict)
    """`r1kit sample` settings for rejection sampling from Dev2 (the non-reasoning data: `preferences`)."""
    preferences: dict[str, Any] = field(default_factory=dict)
    """`r1kit preferences` settings: the non-reasoning SFT rows and the preference pairs (part of `rs`)."""
    dev3: dict[str, Any] = field(default_factory=dict)
    """`r1kit sft` settings for Dev3: the base on the rejection-sampled and non-reasoning data."""
    rm: dict[str, Any] = field(default_factory=dict)
    """`r1kit rm` settings for both reward models (helpful and harmless)."""
    r1: dict[str, Any] = field(default_factory=dict)
    """`r1kit grpo` settings for R1: all-scenario RL from Dev3 with the reward models in the last steps."""
    distill: dict[str, Any] = field(default_factory=dict)
    """`r1kit distill` settings: the student on R1's traces."""
    student_rl: dict[str, Any] = field(default_factory=dict)
    """`r1kit zero` settings for R1-Zero on the student."""
    dev2_nolang: dict[str, Any] = field(default_factory=dict)
    """Ablation: Dev2's settings on top of `dev2`'s, without the language reward by default."""
    r1_all_steps: dict[str, Any] = field(default_factory=dict)
    """Ablation: R1's settings on top of `r1`'s, with general prompts and reward models for all steps."""


C = TypeVar("C")


def load_config(cls: type[C], path: str | Path | None = None, overrides: list[str] | None = None) -> C:
    """Build `cls` from an optional YAML recipe, then apply `key=value` overrides in order."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        raw = loaded or {}
    for item in overrides or []:
        key, value = parse_override(item)
        _set_dotted(raw, key, value)
    return _build(cls, raw, prefix="")


def build_config(cls: type[C], raw: dict[str, Any], prefix: str = "") -> C:
    """`cls` from a nested mapping (as a recipe holds it); errors name keys under `prefix` (e.g. `dev2.`)."""
    return _build(cls, raw, prefix=prefix)


def parse_override(item: str) -> tuple[str, Any]:
    """`a.b=value` -> ("a.b", value parsed as a YAML scalar or flow collection)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part.isidentifier() for part in key.split(".")):
        raise ConfigError(f"malformed override {item!r}: expected key=value, e.g. steps=200 or optim.lr=1e-5")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key, value


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {part} is a value, not a section")
        node = child
    node[leaf] = value


def _build(cls: type[C], raw: dict[str, Any], prefix: str, base: Any = None) -> C:
    """`cls` from `raw`; unset fields keep `base`'s values (a section's defaults in its parent stage,
    e.g. SFT's cosine schedule), else the class defaults."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if key not in fields:
            known = ", ".join(f"{prefix}{k}" for k in fields)
            raise ConfigError(f"unknown config key {name!r} (known: {known})")
        factory = fields[key].default_factory
        section = factory() if dataclasses.is_dataclass(hints[key]) and factory is not dataclasses.MISSING else None
        kwargs[key] = _coerce(value, hints[key], name, section)
    return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)


def _coerce(value: Any, tp: Any, name: str, section: Any = None) -> Any:
    """Check `value` against the annotation `tp`, converting only where the meaning is unambiguous;
    `section` holds the defaults of a dataclass-typed value."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:  # a stage's settings inside `r1kit pipeline`: checked when that stage's config is built
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, str) and dataclasses.fields(tp)[0].name == "path":
            value = {"path": value}  # a bare path stands for a section with only its path set
        if not isinstance(value, dict):
            raise ConfigError(f"config key {name!r} is a section; set its fields, e.g. {name}.<field>=...")
        return _build(tp, value, prefix=f"{name}.", base=section)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(value, inner[0], name)
        # `int | dict[int, int]` (a value or a step schedule): the first form that fits, in order.
        errors = []
        for form in inner:
            try:
                return _coerce(value, form, name)
            except ConfigError as e:
                errors.append((form, e))
        for form, error in errors:  # a mapping's own problem (a bad key or value) says more than "expects ..."
            if isinstance(value, dict) and typing.get_origin(form) is dict:
                raise error
        raise ConfigError(f"config key {name!r} expects {' or '.join(_describe(a) for a in inner)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            choices = ", ".join(str(a) for a in args)
            raise ConfigError(f"config key {name!r} must be one of {choices}, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {name!r} expects true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {name!r} expects an integer, got {value!r}")
        return value
    if tp is float:
        return _to_float(value, name)
    if tp is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"config key {name!r} expects a string, got {value!r}")
        return str(value)
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(f"config key {name!r} expects a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{name}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is list:
        items = value if isinstance(value, list) else [value]  # pass_at=8 means [8]
        if isinstance(value, str) and dataclasses.is_dataclass(args[0]):
            items = [v.strip() for v in value.split(",") if v.strip()]  # data=a.jsonl,b.jsonl
        return [_coerce(v, args[0], f"{name}[{i}]") for i, v in enumerate(items)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {name!r} expects a mapping, got {value!r}")
        return {_coerce_key(k, args[0], name): _coerce(v, args[1], f"{name}.{k}") for k, v in value.items()}
    raise ConfigError(f"config key {name!r} has an unsupported type {tp!r}")


def _coerce_key(key: Any, tp: Any, name: str) -> Any:
    """A mapping's key as the annotated key type. JSON writes every key as a string (the run directory's
    invocations.jsonl), so an int key also accepts a string of digits: "60" -> 60."""
    if tp is int:
        if isinstance(key, str) and re.fullmatch(r"-?[0-9]+", key.strip()):  # not "--5" or "²" (isdigit's)
            return int(key)
        if isinstance(key, bool) or not isinstance(key, int):
            raise ConfigError(f"config key {name!r} expects integer keys (steps), got {key!r}")
        return key
    return str(key)


def _describe(tp: Any) -> str:
    """The accepted form of an annotation, for an error message: 'an integer', 'a mapping {int: number}'."""
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if typing.get_origin(tp) is dict:
        key, value = (_describe(a).removeprefix("an ").removeprefix("a ") for a in typing.get_args(tp))
        return f"a mapping {{{key}: {value}}}"
    return names.get(tp, str(tp))


def _to_float(value: Any, name: str) -> float:
    # YAML 1.1 reads "1e-5" (no dot) as a string, so numeric strings are accepted for float fields.
    if isinstance(value, bool):
        raise ConfigError(f"config key {name!r} expects a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"config key {name!r} expects a number, got {value!r}")


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain data (tuples as lists), for config.yaml in out_dir."""
    return dict(to_dict_value(dataclasses.asdict(cfg)))


def field_docs(cls: type) -> dict[str, str]:
    """Each field's attribute docstring (the string literal under it), folded onto one line; a field a
    dataclass inherits (PPOConfig from ZeroConfig) has its base's, unless the subclass documents it again."""
    docs: dict[str, str] = {}
    for base in reversed([c for c in cls.__mro__ if dataclasses.is_dataclass(c)]):
        docs.update(_field_docs(base.__module__, base.__qualname__))
    return docs


@functools.cache
def _field_docs(module: str, qualname: str) -> dict[str, str]:
    cls = getattr(sys.modules[module], qualname)
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def config_yaml(cfg: Any) -> str:
    """The config as a YAML recipe, every key with its one-line doc as a comment (`--print-config`).
    `load_config(type(cfg), path)` reads it back to an equal config."""
    lines = [f"# {' '.join((type(cfg).__doc__ or type(cfg).__name__).split())}"]
    _yaml_lines(cfg, 0, lines)
    return "\n".join(lines) + "\n"


def _yaml_lines(cfg: Any, indent: int, lines: list[str]) -> None:
    docs = field_docs(type(cfg))
    pad = " " * indent
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        # A section without a doc of its own takes its class's; a plain value never takes its type's.
        section_doc = type(value).__doc__ if dataclasses.is_dataclass(value) else ""
        doc = docs.get(f.name) or " ".join((section_doc or "").split())
        if dataclasses.is_dataclass(value):
            lines.append(f"{pad}{f.name}:" + (f"  # {doc}" if doc else ""))
            _yaml_lines(value, indent + 2, lines)
            continue
        text = yaml.safe_dump(to_dict_value(value), default_flow_style=True, width=1 << 30).strip()
        text = text.removesuffix("\n...").removesuffix("...").strip()  # the end marker of a bare scalar
        lines.append(f"{pad}{f.name}: {text}" + (f"  # {doc}" if doc else ""))


def to_dict_value(x: Any) -> Any:
    """Plain data for YAML: tuples as lists, dataclasses as mappings, recursively."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return to_dict_value(dataclasses.asdict(x))
    if isinstance(x, tuple | list):
        return [to_dict_value(v) for v in x]
    if isinstance(x, dict):
        return {k: to_dict_value(v) for k, v in x.items()}
    return x

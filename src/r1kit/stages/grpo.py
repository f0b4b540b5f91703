"""The GRPO stage: R1-Zero (`r1kit zero`) and R1's reasoning and all-scenario RL (`r1kit grpo`).

Evaluate the starting model on held-out prompts, train it with GRPO on rule rewards (per task, when the
stage mixes several tasks), evaluate every `eval.every` steps and at the end, write the run directory
(`r1kit.trainers.run_dir`). Everything that can fail on bad input (config values, the resume settings,
the model path, the tasks, the data, the checkpoint to resume from) is checked before out_dir is
created or touched.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

import r1kit.judges  # noqa: F401  (registers the `judge` reward)
from r1kit import distributed as dist
from r1kit.config import ConfigError, PPOConfig, ZeroConfig, check_schedule, check_window
from r1kit.evaluation import EvalResult, evaluate
from r1kit.evaluation.plots import plot_hacking, plot_run
from r1kit.judges.reward_model import load as load_reward_model_once
from r1kit.judges.reward_model import register_reward_models
from r1kit.models.device import DTYPES, check_trainable, resolve_device
from r1kit.models.loading import load_tokenizer
from r1kit.models.lora import load_trainable, require_peft, save_merged
from r1kit.models.offload import Offload
from r1kit.rewards import REWARDS, check_code_sandbox, check_reward_names
from r1kit.rollout import Generator, HFGenerator, SamplingParams
from r1kit.schedules import schedule_values, value_at
from r1kit.tasks import load_task
from r1kit.templates import encode_prompts, format_reward_of
from r1kit.trainers.dynamic import PromptCursor
from r1kit.trainers.grpo import (
    Choose,
    make_optimizer,
    make_reference,
    make_scorer,
    mixed_prompts_for_step,
    sampler,
    step_seed,
    train_step,
)
from r1kit.trainers.off_policy import OneStepOff
from r1kit.trainers.optim import optimizer_state
from r1kit.trainers.ppo import Critic
from r1kit.trainers.reporting import check_reporting
from r1kit.trainers.run_dir import RunDir
from r1kit.types import Example

TIMING_KEYS = ("step_seconds", "tokens_per_s", "eval/seconds")
"""Metrics that measure the machine, not the run: excluded when comparing runs for equality."""


@dataclass
class Prepared:
    """What a stage needs, loaded and checked before any output is written. With several tasks, the
    examples are the tasks' concatenated in `task_names` order (`task_sizes` long each)."""

    tokenizer: Any
    train: list[Example]
    train_ids: list[list[int]]
    test: list[Example]
    test_ids: list[list[int]]
    task_names: list[str]
    task_sizes: list[int]
    task_weights: list[float]
    rewards_by_task: dict[str, dict[str, float]]
    """`Example.task` -> the rewards of the stage task it came from (a bilingual task holds two)."""


def validate(cfg: ZeroConfig) -> None:
    """Value checks that types alone cannot express; raises ConfigError naming the key. A step schedule's
    every value is checked against its key's bounds."""
    for key, value in {"rollout.max_new_tokens": cfg.rollout.max_new_tokens, "rollout.temperature":
                       cfg.rollout.temperature, "grpo.kl_coef": cfg.grpo.kl_coef}.items():
        check_schedule(key, value)
    positive = {"steps": cfg.steps, "prompts_per_step": cfg.prompts_per_step, "save_every": cfg.save_every,
                "keep_checkpoints": cfg.keep_checkpoints,
                "task.eval_size": cfg.task.eval_size, "eval.samples": cfg.eval.samples,
                "eval.batch_size": cfg.eval.batch_size,
                "rollout.max_new_tokens": min(schedule_values(cfg.rollout.max_new_tokens)),
                "eval.max_new_tokens": cfg.eval.max_new_tokens, "grpo.num_minibatches": cfg.grpo.num_minibatches,
                "grpo.num_epochs": cfg.grpo.num_epochs, "optim.lr": cfg.optim.lr,
                "grpo.max_sampling_rounds": cfg.grpo.max_sampling_rounds}
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"config key {key!r} must be > 0, got {value}")
    non_negative = {"threads": cfg.threads, "eval.every": cfg.eval.every, "optim.warmup_steps":
                    cfg.optim.warmup_steps, "optim.micro_batch_size": cfg.optim.micro_batch_size,
                    "grpo.kl_coef": min(schedule_values(cfg.grpo.kl_coef)),
                    "rollout.temperature": min(schedule_values(cfg.rollout.temperature)),
                    "grpo.ref_update_every": cfg.grpo.ref_update_every,
                    "optim.max_grad_norm": cfg.optim.max_grad_norm, "model.lora.rank": cfg.model.lora.rank,
                    "model.logprob_chunk_tokens": cfg.model.logprob_chunk_tokens,
                    "optim.max_tokens_per_micro_batch": cfg.optim.max_tokens_per_micro_batch,
                    "rollout.tis_cap": cfg.rollout.tis_cap, "model.lora.dropout": cfg.model.lora.dropout}
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"config key {key!r} must be >= 0, got {value}")
    if cfg.grpo.oversample < 1:
        raise ConfigError(f"config key 'grpo.oversample' must be >= 1 (a draw holds at least prompts_per_step "
                          f"prompts), got {cfg.grpo.oversample}")
    if cfg.group_size < 2:
        raise ConfigError(f"config key 'group_size' must be >= 2 (a group needs a baseline), got {cfg.group_size}")
    if (cfg.prompts_per_step * cfg.group_size) % cfg.grpo.num_minibatches:
        raise ConfigError(f"prompts_per_step * group_size = {cfg.prompts_per_step * cfg.group_size} does not "
                          f"split into grpo.num_minibatches = {cfg.grpo.num_minibatches}")
    for key, value in {"rollout.top_p": cfg.rollout.top_p, "eval.top_p": cfg.eval.top_p}.items():
        if not 0 < value <= 1:
            raise ConfigError(f"config key {key!r} must be in (0, 1], got {value}")
    check_trainable(cfg.model, lora=True)
    if cfg.model.lora.rank > 0:
        require_peft()
    if not 0 < cfg.rollout.gpu_memory_utilization <= 1:
        raise ConfigError(f"config key 'rollout.gpu_memory_utilization' must be in (0, 1], got "
                          f"{cfg.rollout.gpu_memory_utilization}")
    if cfg.rollout.engine == "vllm":
        check_vllm(cfg)
    check_world(cfg)
    check_off_policy(cfg)
    if isinstance(cfg, PPOConfig):
        check_ppo(cfg)
    _validate_tasks(cfg)
    check_reporting(cfg.logging)


def check_world(cfg: ZeroConfig) -> None:
    """ConfigError for launch settings this machine cannot run, or a world size that does not split each
    minibatch into whole prompt groups (a group split across ranks would change its advantages)."""
    reason = dist.check_launch(cfg, resolve_device(cfg.model.device))
    if reason:
        raise ConfigError(reason)
    size = dist.planned_size(cfg)
    if size <= 1:
        return
    B, m = cfg.prompts_per_step, cfg.grpo.num_minibatches
    if B % m or (B // m) % size:
        raise ConfigError(f"prompts_per_step = {B} in grpo.num_minibatches = {m} minibatches does not split into "
                          f"{size} processes in whole groups: each minibatch needs a multiple of {size} prompts")
    unsupported = {"model.lora.rank > 0": cfg.model.lora.rank > 0,
                   "optim.max_tokens_per_micro_batch > 0": cfg.optim.max_tokens_per_micro_batch > 0,
                   "offload.*": cfg.offload.reference or cfg.offload.reward_models or cfg.offload.optimizer,
                   "rollout.engine=vllm": cfg.rollout.engine == "vllm"}
    for what, on in unsupported.items():
        if on:
            raise ConfigError(f"{what} is not supported with several processes yet (world size {size}): "
                              "run it in one process")


def check_ppo(cfg: PPOConfig) -> None:
    """PPO's values, and what its critic does not support yet (one line naming the key)."""
    p = cfg.ppo
    for key, value in {"ppo.gamma": p.gamma, "ppo.lam": p.lam}.items():
        if not 0 <= value <= 1:
            raise ConfigError(f"config key {key!r} must be in [0, 1], got {value}")
    for key, value in {"ppo.vf_coef": p.vf_coef, "ppo.cliprange_value": p.cliprange_value,
                       "ppo.critic_lr": p.critic_lr}.items():
        if value < 0:
            raise ConfigError(f"config key {key!r} must be >= 0, got {value}")
    unsupported = {"several processes (dist.nproc > 1 or cluster.backend=ray)": dist.planned_size(cfg) > 1
                   or cfg.cluster.backend == "ray",
                   "model.lora.rank > 0": cfg.model.lora.rank > 0,
                   "optim.max_tokens_per_micro_batch > 0": cfg.optim.max_tokens_per_micro_batch > 0,
                   "rollout.off_policy_steps=1": cfg.rollout.off_policy_steps > 0,
                   "grpo.dynamic_sampling (a GRPO remedy for zero-variance groups)": cfg.grpo.dynamic_sampling}
    for what, on in unsupported.items():
        if on:
            raise ConfigError(f"r1kit ppo does not support {what} yet")


def check_off_policy(cfg: ZeroConfig) -> None:
    """rollout.off_policy_steps: 0 or 1, and not with what samples from the trained module itself."""
    steps = cfg.rollout.off_policy_steps
    if steps not in (0, 1):
        raise ConfigError(f"config key 'rollout.off_policy_steps' must be 0 (synchronous) or 1 (one step off), "
                          f"got {steps}")
    if steps and cfg.model.lora.rank > 0:
        raise ConfigError("rollout.off_policy_steps=1 with LoRA is not supported yet: use one or the other")
    if steps and cfg.grpo.dynamic_sampling:
        raise ConfigError("rollout.off_policy_steps=1 with grpo.dynamic_sampling is not supported yet: the next "
                          "batch's draws depend on this one's rewards")
    if steps and cfg.rollout.engine == "vllm":
        raise ConfigError("rollout.off_policy_steps=1 with rollout.engine=vllm is not supported yet (its sleep mode "
                          "frees the GPU during training)")


def check_windows(cfg: ZeroConfig) -> None:
    """ConfigError for a task or reward-model window (`last_steps`) longer than the run."""
    for t in cfg.tasks:
        check_window(f"tasks: {t.name}'s last_steps", t.last_steps, cfg.steps)
    for name, spec in cfg.reward_models.items():
        check_window(f"reward_models.{name}.last_steps", spec.last_steps, cfg.steps)


def _validate_tasks(cfg: ZeroConfig) -> None:
    names = [t.name for t in cfg.tasks]
    if len(set(names)) != len(names):
        raise ConfigError(f"tasks: each task once, got {', '.join(names)}")
    if (cfg.tasks and sum(t.weight for t in cfg.tasks) <= 0) or any(t.weight < 0 for t in cfg.tasks):
        raise ConfigError("tasks: weights must be >= 0 with a positive sum")
    check_windows(cfg)
    if cfg.tasks and sum(t.weight for t in cfg.tasks if t.last_steps is None) <= 0:
        raise ConfigError("tasks: at least one task with a positive weight must have no last_steps window "
                          "(every step needs prompts)")
    register_reward_models(cfg.reward_models, cfg.steps, cfg.model.device)
    in_process = {"judge", *cfg.reward_models}
    try:
        for weights in [cfg.rewards, *(t.rewards for t in cfg.tasks)]:
            check_reward_names(weights)
            if in_process & set(weights) and cfg.scoring.workers > 0:
                raise ValueError(f"the {', '.join(sorted(in_process & set(weights)))} reward runs a model in the "
                                 "trainer's process: set scoring.workers=0")
    except ValueError as e:
        raise ConfigError(str(e)) from None


def prepare(cfg: ZeroConfig) -> Prepared:
    """Load the tokenizer and every task's data, and tokenize every prompt once."""
    validate(cfg)
    mix = [(t.name, t.weight, t.path, t.train_size, t.eval_size or cfg.task.eval_size, t.rewards or cfg.rewards)
           for t in cfg.tasks] or [(cfg.task.name, 1.0, cfg.task.path, cfg.task.train_size, cfg.task.eval_size,
                                    cfg.rewards)]
    train: list[Example] = []
    test: list[Example] = []
    sizes, rewards_by_task = [], {}
    for name, _, path, train_size, eval_size, rewards in mix:
        try:
            task_train = load_task(name, "train", n=train_size, seed=cfg.seed, path=path)
            task_test = load_task(name, "test", n=eval_size, seed=cfg.seed, path=path)
        except ValueError as e:  # unknown task, missing or malformed data: the user's input, not a bug
            raise ConfigError(str(e)) from None
        check_code_sandbox(rewards, [e.verifier for e in task_train[:1] + task_test[:1]],
                           unsafe_local=cfg.scoring.code_unsafe_local)
        train += task_train
        test += task_test
        sizes.append(len(task_train))
        rewards_by_task.update({e.task: dict(rewards) for e in task_train + task_test})
    tokenizer = load_tokenizer(cfg.model.path)
    for name, spec in cfg.reward_models.items():  # loaded once, now: a failure is one line, never zeros later
        try:
            load_reward_model_once(spec.path, cfg.model.device)
        except ValueError as e:
            raise ConfigError(f"reward_models.{name}: {e}") from None

    def encode(examples: list[Example]) -> list[list[int]]:
        return encode_prompts([e.prompt for e in examples], cfg.task.template, tokenizer)

    try:
        train_ids, test_ids = encode(train), encode(test)
    except ValueError as e:  # e.g. a chat template asked of a tokenizer that has none
        raise ConfigError(str(e)) from None
    budget = cfg.optim.max_tokens_per_micro_batch
    longest = max(len(p) for p in train_ids) + max(schedule_values(cfg.rollout.max_new_tokens))
    if 0 < budget < longest:
        raise ConfigError(f"optim.max_tokens_per_micro_batch={budget} cannot hold the longest prompt and a full "
                          f"completion ({longest} tokens): raise it to at least {longest}")
    return Prepared(tokenizer, train, train_ids, test, test_ids, [m[0] for m in mix], sizes, [m[1] for m in mix],
                    rewards_by_task)


def load_policy(cfg: ZeroConfig, path: str | None = None) -> Any:
    """The policy to train (`r1kit.models.lora.load_trainable`): model.path or a checkpoint at `path`."""
    return load_trainable(cfg.model, cfg.seed, path)


def check_vllm(cfg: ZeroConfig) -> None:
    """rollout.engine=vllm: vLLM installed and a CUDA device, or one line saying which is missing."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise ConfigError("rollout.engine=vllm needs vLLM: pip install 'r1kit[vllm]' (a CUDA machine)") from None
    if resolve_device(cfg.model.device).type != "cuda":
        raise ConfigError("rollout.engine=vllm runs on a CUDA device: set model.device=cuda or use rollout.engine=hf")


def make_generator(cfg: ZeroConfig, policy: Any, tokenizer: Any) -> Generator:
    """The rollout engine: the policy module itself (hf), a colocated vLLM synced to the policy now, or, in
    a Ray trainer actor (`r1kit.cluster`), the run's rollout workers, synced to the policy now."""
    import os

    if cfg.cluster.backend == "ray" and os.environ.get("R1KIT_RAY_ROLLOUT"):
        from r1kit.cluster import ROLLOUT_ENV, RayGenerator

        remote = RayGenerator.connect(os.environ[ROLLOUT_ENV], pad_token_id=tokenizer.pad_token_id,
                                      out_dir=cfg.out_dir)
        remote.update_weights(policy)  # the workers loaded model.path: a resumed policy differs
        return remote
    if cfg.rollout.engine == "hf":
        return HFGenerator(policy, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                           batch_size=cfg.eval.batch_size, dtype=cfg.model.dtype)
    from r1kit.models.loading import resolve_model_path
    from r1kit.rollout.vllm import VLLMGenerator

    max_len = max(*schedule_values(cfg.rollout.max_new_tokens), cfg.eval.max_new_tokens) + 2048
    engine = VLLMGenerator(resolve_model_path(cfg.model.path), eos_token_id=tokenizer.eos_token_id,
                           pad_token_id=tokenizer.pad_token_id,
                           dtype="bfloat16" if cfg.model.dtype == "float32" else cfg.model.dtype,
                           gpu_memory_utilization=cfg.rollout.gpu_memory_utilization, max_model_len=max_len,
                           seed=cfg.seed)
    engine.update_weights(policy)  # a resumed policy, or merged LoRA adapters
    return engine


def preflight(cfg: ZeroConfig) -> None:
    """Every check `run_grpo` makes before any work (settings, tasks and data, tokenizer, reward models,
    the run directory's resume settings), without training: the launcher of several processes runs it."""
    prepare(cfg)
    RunDir(cfg, steps_derived=steps_derived)


def steps_derived(cfg: ZeroConfig) -> str:
    """What is computed from `steps` (so that raising it changes past steps), or "" when nothing is."""
    if cfg.optim.schedule == "cosine":
        return "optim.schedule=cosine"
    # one-step-off: the last step samples no next batch, so a longer run's next step would not be the same
    return "rollout.off_policy_steps=1" if cfg.rollout.off_policy_steps else ""


def scheduled(cfg: ZeroConfig, step: int) -> dict[str, float]:
    """`schedule/<key>`: the value at `step` of each setting given as a step schedule (none for plain
    values, so a run without schedules logs what it always did)."""
    fields: dict[str, float | Mapping[int, float]] = {
        "max_new_tokens": cfg.rollout.max_new_tokens, "temperature": cfg.rollout.temperature,
        "kl_coef": cfg.grpo.kl_coef}
    return {f"schedule/{name}": float(value_at(given, step, interpolation=cfg.schedule))
            for name, given in fields.items() if isinstance(given, Mapping)}


def run_grpo(cfg: ZeroConfig, *, progress: bool = True) -> dict[str, Any]:
    """The GRPO stage end to end; returns summary.json's content. Resumes from out_dir's newest valid
    checkpoint. Nothing in out_dir is written before every check has passed."""
    started = time.perf_counter()
    validate(cfg)
    world = dist.start(cfg, resolve_device(cfg.model.device))
    run = RunDir(cfg, steps_derived=steps_derived)
    prep = prepare(cfg)
    tokenizer = prep.tokenizer
    resumed = run.resume(lambda c: (load_policy(cfg, str(c.policy_dir)), c.load_state()))
    policy = resumed[1][0] if resumed else load_policy(cfg)
    start = resumed[0].step if resumed else 0

    log = run.begin(start if resumed else None)
    reference = make_reference(policy, max(schedule_values(cfg.grpo.kl_coef)), cfg.model.dtype)  # any step's KL
    if resumed and reference is not None:
        reference.load_state_dict(resumed[1][1]["reference"])
    # Several processes: FSDP2 shards (the policy keeps a plain replica that samples and is saved).
    policy = dist.shard(policy, DTYPES[cfg.model.dtype])
    reference = dist.shard(reference, DTYPES[cfg.model.dtype], replica=False) if reference is not None else None
    if cfg.rollout.off_policy_steps and not world.distributed:
        dist.add_replica(policy)  # one-step-off: the engine samples from its own copy, never the trained one
    optimizer, scheduler = make_optimizer(cfg, policy)
    critic = (Critic.create(cfg, policy, resumed[1][1]["critic"] if resumed else None)
              if isinstance(cfg, PPOConfig) else None)  # PPO: a value model beside the policy
    offload = Offload.of(cfg.offload, resolve_device(cfg.model.device))
    register_reward_models(cfg.reward_models, cfg.steps, cfg.model.device, offload=offload)
    generator = make_generator(cfg, dist.replica(policy), tokenizer)
    evaluator = dist.Split(generator)  # held-out prompts: each rank samples its share

    def held_out(step: int) -> dict[str, float]:
        e = cfg.eval
        params = SamplingParams(temperature=e.temperature, top_p=e.top_p, max_new_tokens=e.max_new_tokens)
        t0 = time.perf_counter()
        # One fixed seed for every evaluation: differences between steps come from the policy only.
        result: EvalResult = evaluate(evaluator, tokenizer, prep.test, prep.test_ids, k=e.samples, params=params,
                                      seed=step_seed(cfg.seed, 0, 4), format_reward=format_reward_of(cfg.task.template))
        return {**result.metrics(), **proxy_rewards(cfg, prep, result), "eval/seconds": time.perf_counter() - t0}

    choose: Choose | None = None
    if len(prep.task_names) > 1:
        def choose(step: int, draw: int, count: int) -> list[int]:
            # A task with a window (tasks[].last_steps) weighs 0 before it.
            weights = [w if not cfg.tasks or cfg.tasks[i].active_at(step, cfg.steps) else 0.0
                       for i, w in enumerate(prep.task_weights)]
            return mixed_prompts_for_step(prep.task_sizes, weights, draw, count, cfg.seed)

    scorer = make_scorer(cfg, task_weights=prep.rewards_by_task if cfg.tasks else None)
    prefetch = OneStepOff(sampler(cfg, generator, tokenizer, prep.train, prep.train_ids, scorer, choose,
                                  dist.replica(policy))) if cfg.rollout.off_policy_steps else None

    cursor = PromptCursor()  # the prompt stream's next draw (grpo.dynamic_sampling consumes a variable number)

    def engine_current() -> None:
        """One-step-off: the engine samples from the previous policy; an evaluation or a checkpoint wants
        this one (the batch in flight keeps its own version)."""
        if prefetch is not None:
            prefetch.settle()
            generator.update_weights(dist.sync(policy))

    try:
        if resumed:
            state = resumed[1][1]
            dist.load_optimizer_state(optimizer, state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if prefetch is not None:
                prefetch.restore(state.get("off_policy"))
            cursor = PromptCursor.restore(state.get("prompt_cursor"), start)
        else:
            log.append({"step": 0, **held_out(0)})
        offload.park("reference", reference)
        offload.park("optimizer", optimizer)
        # On a terminal the bar redraws often; in a log file it prints a line every 10 seconds.
        bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not (progress and world.main),
                   desc=f"r1kit {'ppo' if critic else 'zero' if not cfg.tasks else 'grpo'}", unit="step",
                   dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 10.0)
        used = sum(r.get("step_seconds", 0.0) + r.get("eval/seconds", 0.0) for r in log.rows())
        for step in bar:
            if cfg.max_wall_seconds is not None and dist.same(used >= cfg.max_wall_seconds):
                break  # an earlier invocation stopped here on time (its last row has the final evaluation)
            row: dict[str, Any] = {"step": step + 1}
            row.update(train_step(cfg, step, generator, tokenizer, policy, reference, optimizer, scheduler,
                                  prep.train, prep.train_ids, scorer=scorer, choose=choose, offload=offload,
                                  prefetch=prefetch, cursor=cursor, critic=critic))
            row.update(scheduled(cfg, step))
            done = step + 1
            used += row["step_seconds"]
            last = done == cfg.steps or (cfg.max_wall_seconds is not None
                                         and dist.same(used >= cfg.max_wall_seconds))  # rank 0's clock
            save = last or done % cfg.save_every == 0
            if save or last or (cfg.eval.every and done % cfg.eval.every == 0):
                engine_current()
            if last or (cfg.eval.every and done % cfg.eval.every == 0):
                row.update(held_out(done))
                used += row["eval/seconds"]
            log.append(row)
            bar.set_postfix(reward=f"{row['reward/mean']:.2f}", acc=f"{row.get('accuracy', 0):.2f}",
                            held_out=f"{row.get('eval/pass@1', float('nan')):.2f}")
            if save:
                # Full tensors in the single-process format: the checkpoint loads at any world size.
                state = {**optimizer_state(optimizer, scheduler, done), "optimizer": dist.optimizer_state(optimizer)}
                state["reference"] = dist.full_state_dict(reference) if reference is not None else None
                state["off_policy"] = prefetch.state() if prefetch is not None else None
                state["prompt_cursor"] = cursor.state()
                state["critic"] = critic.state() if critic is not None else None
                run.save(done, dist.replica(policy), tokenizer, state)
            if last:
                break
        bar.close()
    finally:
        if prefetch is not None:
            prefetch.close()
        scorer.close()
        run.close()
    summary = _finish(cfg, run, prep, dist.replica(policy), tokenizer, time.perf_counter() - started)
    if world.distributed:
        dist.shutdown()
    return summary


def proxy_rewards(cfg: ZeroConfig, prep: Prepared, result: EvalResult) -> dict[str, float]:
    """`eval/rm/<name>`: each reward model's score (normalised as in training, whatever its window) of the
    held-out completions of the tasks it scores: the proxy beside their gold pass@1 (Gao et al.'s plot)."""
    out = {}
    for name in cfg.reward_models:
        scored = [p for p, e in enumerate(prep.test) if name in prep.rewards_by_task.get(e.task, {})]
        if not scored:
            continue
        prompts = [prep.test[p].prompt for p in scored for _ in result.completions[p]]
        completions = [c for p in scored for c in result.completions[p]]
        scores = REWARDS[name](prompts, completions, step=None)
        out[f"eval/rm/{name}"] = sum(scores) / len(scores)
    return out


def _finish(cfg: ZeroConfig, run: RunDir, prep: Prepared, policy: Any, tokenizer: Any,
            wall: float) -> dict[str, Any]:
    """Final model, plots and summary.json from the metrics log (so a resumed run reports the whole run)."""
    assert run.log is not None
    rows = run.log.rows()
    evals = [r for r in rows if "eval/pass@1" in r]
    out = Path(cfg.out_dir)
    if dist.world().main:
        save_merged(policy, out / "model")  # LoRA: adapters merged, so plain transformers loads it
        tokenizer.save_pretrained(out / "model")
        plot_run(rows, out / "plots", title=f"GRPO on {', '.join(prep.task_names)}")
    if cfg.reward_models and dist.world().main:  # each reward model's proxy beside the gold of the tasks it scores
        golds = {name: [t.name for t in cfg.tasks if name in (t.rewards or cfg.rewards)] for name in cfg.reward_models}
        plot_hacking(rows, {name: tasks for name, tasks in golds.items() if tasks}, out / "plots" / "hacking.png")

    def pick(r: dict[str, Any]) -> dict[str, Any]:
        return {k.removeprefix("eval/"): v for k, v in r.items() if k.startswith("eval/") and k != "eval/seconds"}

    train_seconds = sum(r.get("step_seconds", 0.0) + r.get("eval/seconds", 0.0) for r in rows)
    return run.finish({"before": pick(evals[0]), "after": pick(evals[-1]), "steps": rows[-1]["step"],
                       "wall_seconds": wall, "train_seconds": train_seconds,
                       "tasks": prep.task_names,
                       "eval": {"n_prompts": len(prep.test), "k": cfg.eval.samples,
                                "temperature": cfg.eval.temperature, "top_p": cfg.eval.top_p}})

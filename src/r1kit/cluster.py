"""Run a GRPO stage on Ray: rollout workers sample, trainer workers train (`cluster.backend=ray`).

Why this shape: each trainer actor is one torchrun process of `r1kit.distributed` (same RANK / WORLD_SIZE /
MASTER_ADDR environment, FSDP2 group and `run_grpo`), so a Ray run is the single-process run step for
step; only sampling moves. In a trainer actor `make_generator` returns a `RayGenerator`: it cuts each call
into contiguous shares of whole prompt groups, one per rollout worker, with the `first_group` offsets that
keep every sample the single-process one, and after each step ships rank 0's weights to every worker once.

Placement: one STRICT_PACK placement group per role, so a role lives on one node. A multi-node cluster
needs one STRICT_PACK group per node (LOCAL_RANK from the node's share): not written yet; a role larger
than a node waits `READY_TIMEOUT_S` and stops with one line. out_dir must be storage that trainer 0 writes
and the driver reads, and every node needs r1kit installed.

Failures: a dead rollout worker stops the trainers with `WorkerDied`; the driver kills every actor at the
first failure and raises `ClusterError` naming the worker and the checkpoint step a rerun resumes from
(checkpoints are renamed into place, never half-written).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from r1kit import distributed as dist
from r1kit.config import ConfigError
from r1kit.rollout.base import Generation, SamplingParams, concat

NAMESPACE = "r1kit"
"""The Ray namespace of every named r1kit actor."""
ROLLOUT_ENV = "R1KIT_RAY_ROLLOUT"
"""Set in trainer actors to "<rollout name prefix>,<workers>": `make_generator` then returns a RayGenerator."""
READY_TIMEOUT_S = 300.0
"""How long to wait for the placement groups (the cluster's free resources) before giving up."""
COMMANDS = ("zero", "grpo")


class WorkerDied(RuntimeError):
    """A rollout worker is gone (killed, node lost, out of memory): the run cannot sample."""


class ClusterError(RuntimeError):
    """A Ray run stopped: the message names the worker and the checkpoint a rerun resumes from."""


def worker_name(run_id: str, role: str, index: int | str) -> str:
    """The Ray actor name (namespace `NAMESPACE`) of worker `index` of `role` ("rollout", "trainer") of run
    `run_id`: unique per run, so two runs on one cluster never share a worker ("" gives the prefix)."""
    return f"r1kit-{run_id}-{role}-{index}"


def resume_hint(out_dir: str | Path) -> str:
    """What a rerun does, from the newest intact checkpoint in out_dir."""
    from r1kit.trainers.checkpoint import latest_checkpoint

    ckpt = latest_checkpoint(Path(out_dir))
    if ckpt is None:
        return f"no checkpoint in {out_dir} yet: rerunning the same command starts over"
    return f"the checkpoint at step {ckpt.step} in {out_dir} is intact: rerun the same command to resume from it"


def shares(n: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous near-equal ranges of n prompts over `parts` workers, empty ones dropped.

    >>> shares(5, 2), shares(1, 3)
    ([(0, 3), (3, 5)], [(0, 1)])
    """
    ranges = [dist.spread(n, dist.World(rank=i, size=parts)) for i in range(parts)]
    return [(a, b) for a, b in ranges if b > a]


class RolloutWorker:
    """A Ray actor holding a replica of the policy and the stage's own engine (`make_generator` outside
    a trainer actor: HF, or vLLM on a GPU worker)."""

    def __init__(self, cfg: Any, cpus: int) -> None:
        from r1kit.models.loading import load_tokenizer
        from r1kit.stages.grpo import load_policy, make_generator

        torch.set_num_threads(cpus)
        os.environ.pop(ROLLOUT_ENV, None)
        self.error: Exception | None = None
        try:
            self.policy = load_policy(cfg).eval()  # model.path; the trainers push their weights before sampling
            self.generator = make_generator(cfg, self.policy, load_tokenizer(cfg.model.path))
        except Exception as e:  # raised by ping: a failing __init__ reaches the driver as text, ping keeps the type
            self.error = e

    def ping(self) -> bool:
        if self.error is not None:
            raise self.error
        return True

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Sample from these weights from now on (Ray resolves the object reference to the tensors)."""
        self.policy.load_state_dict(state)
        self.generator.update_weights(self.policy)

    def generate(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams, num_samples: int, seed: int,
                 first_group: int) -> Generation:
        return self.generator.generate(prompt_ids, params, num_samples=num_samples, seed=seed,
                                       first_group=first_group)


class RayGenerator:
    """The Generator of a trainer actor: rollout workers sample, in contiguous shares of whole groups."""

    def __init__(self, workers: Sequence[Any], names: Sequence[str], *, pad_token_id: int,
                 out_dir: str | Path) -> None:
        self.workers, self.names = list(workers), list(names)
        self.pad_token_id = pad_token_id  # dist.Split reads it
        self.out_dir = Path(out_dir)
        self.last_sync: dict[str, float] | None = None
        """The latest weight export: bytes sent and seconds until every worker had loaded them (rank 0)."""

    @classmethod
    def connect(cls, spec: str, *, pad_token_id: int, out_dir: str | Path) -> RayGenerator:
        """The named rollout workers that `spec` ("<prefix>,<n>", `ROLLOUT_ENV`'s value) describes."""
        import ray

        prefix, n = spec.rsplit(",", 1)
        names = [f"{prefix}{i}" for i in range(int(n))]
        return cls([ray.get_actor(name, namespace=NAMESPACE) for name in names], names,
                   pad_token_id=pad_token_id, out_dir=out_dir)

    def generate(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams, *, num_samples: int = 1,
                 seed: int = 0, first_group: int = 0) -> Generation:
        calls = [(i, self.workers[i].generate.remote(list(prompt_ids[a:b]), params, num_samples, seed,
                                                     first_group + a))
                 for i, (a, b) in enumerate(shares(len(prompt_ids), len(self.workers)))]
        return concat(self._get(calls), self.pad_token_id)

    def update_weights(self, model: torch.nn.Module) -> None:
        """Rank 0 puts `model`'s weights in the object store once and every worker loads them; then every
        rank waits, so that none samples with the old weights."""
        if dist.world().main:
            import ray

            t0 = time.perf_counter()
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            ref = ray.put(state)
            self._get([(i, w.load.remote(ref)) for i, w in enumerate(self.workers)])
            unique = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in state.values()}
            self.last_sync = {"bytes": float(sum(unique.values())), "seconds": time.perf_counter() - t0}
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / "sync.jsonl", "a") as f:
                f.write(json.dumps({**self.last_sync, "workers": len(self.workers)}) + "\n")
        dist.barrier()

    def _get(self, calls: list[tuple[int, Any]]) -> list[Any]:
        """The results in order, or WorkerDied naming the first worker that is gone."""
        import ray
        from ray.exceptions import RayActorError

        out = []
        for i, ref in calls:
            try:
                out.append(ray.get(ref))
            except RayActorError as e:
                why = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise WorkerDied(f"rollout worker {self.names[i]} died ({why}); "
                                 f"{resume_hint(self.out_dir)}") from None
        return out


class TrainerWorker:
    """A Ray actor that is one torchrun process: it sets the environment `dist.init` reads and runs the stage."""

    def __init__(self, cpus: int) -> None:
        torch.set_num_threads(cpus)

    def address(self) -> tuple[str, int]:
        """This node's IP and a free port on it (trainer 0's are the process group's MASTER_ADDR/PORT)."""
        import ray

        with socket.socket() as s:
            s.bind(("", 0))
            return str(ray.util.get_node_ip_address()), int(s.getsockname()[1])

    def run(self, cfg: Any, env: dict[str, str]) -> dict[str, Any]:
        from r1kit.stages.grpo import run_grpo

        os.environ.update(env)
        return run_grpo(cfg, progress=False)


def run_on_ray(command: str, cfg: Any, *, progress: bool = False, run_id: str | None = None) -> dict[str, Any]:
    """Run `command` (zero, grpo) with cfg.cluster's workers; returns rank 0's summary. Starts a local Ray
    (or joins cluster.address) unless Ray is already initialised, which it then leaves up. `run_id` names
    the actors (`worker_name`); default a random one."""
    if command not in COMMANDS:
        raise ConfigError("cluster.backend=ray runs the GRPO stages (zero, grpo) for now")
    from r1kit.stages.grpo import validate

    validate(cfg)  # bad input stops before any actor starts
    import ray

    c = cfg.cluster
    started = not ray.is_initialized()
    if started:
        local = {} if c.address else {"num_cpus": (c.rollout_workers + c.trainer_workers) * c.cpus_per_worker + 1}
        ray.init(address=c.address, namespace=NAMESPACE, **local)
    launch = _Launch(cfg, run_id or uuid.uuid4().hex[:8])
    try:
        return launch.run(progress)
    finally:
        launch.stop()
        if started:
            ray.shutdown()


class _Launch:
    """The actors and placement groups of one run, so that every exit removes them all."""

    def __init__(self, cfg: Any, run_id: str) -> None:
        self.cfg, self.c, self.run_id = cfg, cfg.cluster, run_id
        self.actors: list[Any] = []
        self.groups: list[Any] = []

    def run(self, progress: bool) -> dict[str, Any]:
        c = self.c
        rollout = self.start(RolloutWorker, "rollout", c.rollout_workers, self.cfg, c.cpus_per_worker)
        trainers = self.start(TrainerWorker, "trainer", c.trainer_workers, c.cpus_per_worker)
        self.wait([w.ping.remote() for w in rollout], "rollout")  # the models are loaded
        addresses = self.wait([t.address.remote() for t in trainers], "trainer")
        nodes, port = [ip for ip, _ in addresses], addresses[0][1]
        futures = []
        for rank, t in enumerate(trainers):
            local = [i for i, n in enumerate(nodes) if n == nodes[rank]]
            env = {"RANK": str(rank), "WORLD_SIZE": str(len(trainers)), "MASTER_ADDR": nodes[0],
                   "MASTER_PORT": str(port), "LOCAL_WORLD_SIZE": str(len(local)),
                   # A GPU actor sees only its own GPUs (Ray sets CUDA_VISIBLE_DEVICES): its device is cuda:0.
                   "LOCAL_RANK": "0" if c.gpus_per_worker > 0 else str(local.index(rank)),
                   ROLLOUT_ENV: f"{worker_name(self.run_id, 'rollout', '')},{c.rollout_workers}"}
            # start_world divides cfg.threads among a node's processes; each actor reserved cpus_per_worker.
            cfg = dataclasses.replace(self.cfg, threads=c.cpus_per_worker * len(local))
            futures.append(t.run.remote(cfg, env))
        return self.wait(futures, "trainer", steps=self.cfg.steps if progress else 0)[0]

    def start(self, cls: type, role: str, n: int, *args: Any) -> list[Any]:
        """n actors of `cls` in one STRICT_PACK placement group, one bundle each."""
        import ray
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        c = self.c
        bundle = {"CPU": float(c.cpus_per_worker), **({"GPU": float(c.gpus_per_worker)} if c.gpus_per_worker else {})}
        group = placement_group([dict(bundle) for _ in range(n)], strategy="STRICT_PACK")
        self.groups.append(group)
        if not ray.wait([group.ready()], timeout=READY_TIMEOUT_S)[0]:
            raise ClusterError(f"Ray could not place {n} {role} workers of {bundle} on one node in "
                               f"{READY_TIMEOUT_S:.0f} s (cluster: {ray.cluster_resources()}): lower cluster.*")
        for i in range(n):
            strategy = PlacementGroupSchedulingStrategy(placement_group=group, placement_group_bundle_index=i)
            actor: Any = ray.remote(cls).options(name=worker_name(self.run_id, role, i), namespace=NAMESPACE,
                                                 num_cpus=c.cpus_per_worker, num_gpus=c.gpus_per_worker,
                                                 scheduling_strategy=strategy)
            self.actors.append(actor.remote(*args))
        return self.actors[-n:]

    def wait(self, futures: list[Any], role: str, *, steps: int = 0) -> list[Any]:
        """Every result in order. On the first failure: kill every actor (a rank blocked in a collective
        would wait forever) and raise ClusterError naming the worker. `steps` > 0 shows a progress bar."""
        import ray
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="r1kit ray", unit="step", disable=not steps, dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 10.0)
        pending = list(futures)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=2.0)
                for ref in ready:
                    error = _error(ref)
                    if error is not None:
                        self.stop()
                        for other in pending:  # read, so that Ray does not log them as unhandled
                            _error(other)
                        raise self.explain(error, worker_name(self.run_id, role, futures.index(ref)))
                if steps and _done(self.cfg.out_dir) > bar.n:
                    bar.update(_done(self.cfg.out_dir) - bar.n)
        finally:
            bar.close()
        return ray.get(futures)

    def explain(self, error: Exception, name: str) -> Exception:
        """The one-line error for a failed worker; bad input (config, checkpoint, model) keeps its type."""
        from ray.exceptions import RayTaskError

        from r1kit.models.loading import ModelLoadError
        from r1kit.trainers.checkpoint import CheckpointError

        cause = error.cause if isinstance(error, RayTaskError) else error
        if isinstance(cause, ConfigError | CheckpointError | ModelLoadError):
            return cause
        line = (str(cause).strip().splitlines() or [""])[0]
        if isinstance(cause, WorkerDied):  # its message already says how to resume
            return ClusterError(f"{name} stopped: {line}")
        return ClusterError(f"{name} failed ({type(cause).__name__}: {line}); {resume_hint(self.cfg.out_dir)}")

    def stop(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)
        for g in self.groups:
            ray.util.remove_placement_group(g)
        self.actors, self.groups = [], []


def _error(ref: Any) -> Exception | None:
    import ray

    try:
        ray.get(ref)
    except Exception as e:
        return e
    return None


def _done(out_dir: str) -> int:
    """The last step in out_dir's metrics log (0 when none)."""
    try:
        lines = (Path(out_dir) / "metrics.jsonl").read_text().splitlines()
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (OSError, ValueError, KeyError):
        return 0

"""The one place that knows about more than one process: the process group, FSDP2 sharding, which rank
holds which prompt groups, the collectives the loops need, and the export of full weights and states.

The loops (GRPO, SFT) call only this interface, and in one process every call is the identity: the
same code runs alone, under `torchrun` (one process per device, torch FSDP2) and in Ray trainer actors
(`r1kit.cluster`), which set the same RANK / WORLD_SIZE / MASTER_ADDR environment torchrun does.

Decisions (R1-SPEC's scale-out through existing engines; NOTES-r1-stages.md for the pitfalls):
- gloo on CPU, nccl on CUDA; an explicit device mesh (an implicit one moves modules to CUDA).
- `fully_shard` every decoder layer, then the root (embeddings and a tied head stay in one unit);
  `MixedPrecisionPolicy(param_dtype=model.dtype, reduce_dtype=float32)`: with model.dtype=bfloat16 the
  weights are gathered and used in bf16 (half the traffic), where one process keeps fp32 weights under
  autocast (norms and embeddings in fp32). So in bf16, N processes differ from one by bf16 rounding, not
  only summation order; in float32 (the CPU default, and the parity tests) they agree to float error.
- Gradients are SUMMED across ranks, never averaged (torch issue #162338: FSDP2 on gloo sums where it
  should average; r1kit sets the reduction explicitly), and every loss is divided by the GLOBAL token or
  sequence count, so the gradient does not depend on the world size.
- Work is split in whole prompt groups (advantages stay exact) and contiguous, in rank order, so that
  gathering the shares back gives the single-process order; sampling is seeded per group, so a split
  changes no sample.
- The rollout engine samples from a plain replica of the policy that `sync` refills from the shards
  after each step (the weight export a vLLM engine would receive); checkpoints are written from it by
  rank 0 in the single-process format, so they load at any world size.
"""

from __future__ import annotations

import copy
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class World:
    """This process's place: rank `rank` of `size`. size 1 is the single process (no process group)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    backend: str = ""
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    mesh: Any = None
    groups: dict[str, Any] = field(default_factory=dict)
    """Extra gloo groups for object gathers: "objects" (main thread) and "rollout" (the one-step-off
    rollout thread: two threads must never share a group)."""
    replicas: weakref.WeakKeyDictionary[torch.nn.Module, torch.nn.Module] = field(
        default_factory=weakref.WeakKeyDictionary)
    """sharded module -> its plain full replica (rollout engine and checkpoint writer); an entry goes with
    its module."""

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


_WORLD = World()


def world() -> World:
    """The current world (a single process until `init` has run under torchrun or a Ray trainer actor)."""
    return _WORLD


def launched() -> int:
    """The world size torchrun (or r1kit's Ray launcher) announced in the environment; 1 when alone."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(device: torch.device, backend: str = "auto") -> World:
    """Join the process group the environment describes (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), on
    `device`'s backend, and build the 1-D device mesh. A no-op in a single process."""
    global _WORLD
    size = launched()
    if size <= 1 or _WORLD.distributed:
        return _WORLD
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    groups = {name: dist.new_group(backend="gloo") for name in ("objects", "rollout")}
    _WORLD = World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local_rank,
                   local_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")), backend=backend, device=device,
                   mesh=mesh, groups=groups)
    return _WORLD


def start(cfg: Any, device: torch.device) -> World:
    """Join the process group when launched as several processes (cfg.dist.backend), and set torch's CPU
    threads (cfg.threads shared out among the processes of one machine)."""
    w = init(device, cfg.dist.backend)
    if cfg.threads > 0:
        torch.set_num_threads(max(1, cfg.threads // w.local_size))
    return w


def shutdown() -> None:
    """Leave the process group (end of a distributed run)."""
    global _WORLD
    if dist.is_initialized():
        dist.destroy_process_group()
    _WORLD = World()


def share(n: int, w: World | None = None) -> tuple[int, int]:
    """This rank's contiguous range of n whole units (prompt groups, examples); n must split evenly."""
    w = w or _WORLD
    if n % w.size:
        raise ValueError(f"{n} groups do not split into {w.size} ranks")
    per = n // w.size
    return w.rank * per, (w.rank + 1) * per


def gather(obj: Any, *, group: str = "objects") -> list[Any]:
    """Every rank's `obj`, in rank order ([obj] alone)."""
    w = _WORLD
    if not w.distributed:
        return [obj]
    out: list[Any] = [None] * w.size
    dist.all_gather_object(out, obj, group=w.groups[group])
    return out


def total(values: dict[str, float]) -> dict[str, float]:
    """Each value summed over the ranks (the same keys on every rank)."""
    if not _WORLD.distributed:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64)
    dist.all_reduce(t, group=_WORLD.groups["objects"])
    return dict(zip(values, t.tolist(), strict=True))


def most(n: int) -> int:
    """The largest n over the ranks: how many forward passes every rank must run (FSDP2 gathers each
    unit's weights in every forward, so ranks run the same number of them)."""
    if not _WORLD.distributed:
        return n
    t = torch.tensor([n], dtype=torch.long)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_WORLD.groups["objects"])
    return int(t.item())


def same(value: Any) -> Any:
    """Rank 0's `value` on every rank: decisions taken from one rank's clock (a wall-time budget) must
    be the same everywhere, or the ranks would part ways."""
    if not _WORLD.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, group=_WORLD.groups["objects"])
    return box[0]


def as_many(parts: list[Any]) -> list[Any]:
    """`parts` padded with None to the most any rank has: FSDP2 gathers each unit's weights in every
    forward, so every rank runs as many forwards (a None is an idle one, whose loss is multiplied by 0)."""
    return parts + [None] * (most(len(parts)) - len(parts))


def barrier() -> None:
    if _WORLD.distributed:
        dist.barrier(group=_WORLD.groups["objects"])


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's repeated blocks: modules whose class transformers names in `_no_split_modules`."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(f"{type(model).__name__} names no decoder layer class (_no_split_modules): cannot shard it")
    return layers


def shard(model: torch.nn.Module, dtype: torch.dtype = torch.float32, *, replica: bool = True) -> torch.nn.Module:
    """FSDP2: `fully_shard` each decoder layer, then the root, on the world's mesh, with gradients summed
    (not averaged) across ranks. Computes in `dtype`, reduces in float32. Keeps a plain full replica
    first when `replica` (the policy's: it samples and is saved). Identity in a single process."""
    w = _WORLD
    if not w.distributed:
        return model
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

    copy_ = copy.deepcopy(model).eval() if replica else None
    policy = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=w.mesh, mp_policy=policy)
    fully_shard(model, mesh=w.mesh, mp_policy=policy)
    for m in model.modules():
        if isinstance(m, FSDPModule):
            m.set_force_sum_reduction_for_comms(True)  # SUM collectives on every backend...
            m.set_gradient_divide_factor(1.0)  # ...and no division: the losses are globally normalised
    if copy_ is not None:
        w.replicas[model] = copy_
    return model


def add_replica(model: torch.nn.Module) -> None:
    """Give an unsharded `model` a plain replica too (one-step-off rollout samples from it while `model`
    trains); `sync` refills it."""
    _WORLD.replicas[model] = copy.deepcopy(model).eval()


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict with full tensors on every rank (a collective for a sharded module)."""
    state = model.state_dict()
    if not _WORLD.distributed:
        return state
    from torch.distributed.tensor import DTensor

    return {k: v.full_tensor() if isinstance(v, DTensor) else v for k, v in state.items()}


def replica(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module that samples and is saved: `model` itself alone, its replica when sharded."""
    return _WORLD.replicas.get(model, model)


def sync(model: torch.nn.Module) -> torch.nn.Module:
    """Refill the replica from the shards (a collective) and return it; `model` itself when alone."""
    plain = replica(model)
    if plain is not model:
        plain.load_state_dict(full_state_dict(model))
    return plain


def grad_norm(model: torch.nn.Module, max_norm: float) -> float:
    """Clip the (possibly sharded) gradients to `max_norm` and return their global norm."""
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    full = getattr(norm, "full_tensor", None)
    return float(full() if full is not None else norm)


def optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state dict with full tensors: the single-process format at any world size."""
    state = optimizer.state_dict()
    if not _WORLD.distributed:
        return state
    from torch.distributed.tensor import DTensor

    def full(v: Any) -> Any:
        return v.full_tensor() if isinstance(v, DTensor) else v

    return {**state, "state": {i: {k: full(v) for k, v in s.items()} for i, s in state["state"].items()}}


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a full (single-process format) optimizer state, sharding each tensor like its parameter."""
    if _WORLD.distributed:
        from torch.distributed.tensor import DTensor, distribute_tensor

        params = [p for g in optimizer.param_groups for p in g["params"]]
        sharded = {}
        for i, s in state["state"].items():
            p = params[int(i)]
            sharded[i] = {k: distribute_tensor(v.to(p.device), p.device_mesh, p.placements)
                          if isinstance(p, DTensor) and isinstance(v, torch.Tensor) and v.shape == p.shape else v
                          for k, v in s.items()}
        state = {**state, "state": sharded}
    optimizer.load_state_dict(state)


def planned_size(cfg: Any) -> int:
    """The world size a config asks for: dist.nproc, Ray's trainer_workers, or what torchrun announced."""
    cluster = getattr(cfg, "cluster", None)
    if cluster is not None and cluster.backend == "ray":
        return int(cluster.trainer_workers)
    return max(int(cfg.dist.nproc), launched())


def check_launch(cfg: Any, device: torch.device) -> str:
    """"" when the launch settings can run here, else the one-line reason (checked before any process
    starts): a backend without its device, Ray without Ray, a world size below 1."""
    if cfg.dist.nproc < 1:
        return f"config key 'dist.nproc' must be >= 1, got {cfg.dist.nproc}"
    if cfg.dist.backend == "nccl" and not torch.cuda.is_available():
        return "dist.backend=nccl needs a CUDA GPU and this machine has none: use dist.backend=gloo (or auto)"
    if cfg.dist.backend == "nccl" and device.type != "cuda":
        return "dist.backend=nccl runs on CUDA devices: set model.device=cuda or dist.backend=gloo"
    if device.type == "cuda" and cfg.dist.backend == "gloo" and planned_size(cfg) > 1:
        return "dist.backend=gloo with CUDA devices: use dist.backend=nccl (or auto)"
    if device.type == "cuda" and cfg.dist.nproc > 1:
        if device.index is not None:
            return (f"model.device={device} with dist.nproc={cfg.dist.nproc}: each process takes the GPU of its "
                    "LOCAL_RANK, set model.device=cuda")
        if cfg.dist.nproc > torch.cuda.device_count():
            return f"dist.nproc={cfg.dist.nproc} but this machine has {torch.cuda.device_count()} GPU(s)"
    cluster = getattr(cfg, "cluster", None)
    if cluster is not None and cluster.backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            return "cluster.backend=ray needs Ray: pip install 'r1kit[ray]'"
        for key in ("rollout_workers", "trainer_workers", "cpus_per_worker"):
            if getattr(cluster, key) < 1:
                return f"config key 'cluster.{key}' must be >= 1, got {getattr(cluster, key)}"
        if cfg.dist.nproc > 1:
            return "cluster.backend=ray starts its own trainer processes: leave dist.nproc at 1"
    return ""



def spread(n: int, w: World | None = None) -> tuple[int, int]:
    """This rank's contiguous near-equal range of n items (the first ranks take one more)."""
    w = w or _WORLD
    per, extra = divmod(n, w.size)
    a = w.rank * per + min(w.rank, extra)
    return a, a + per + (1 if w.rank < extra else 0)


class Split:
    """A Generator that samples this rank's share of the prompts and gathers every rank's, in order:
    the evaluator of a distributed run (sampling is seeded per prompt group, so the result is the
    single-process one). Alone it is the wrapped engine."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def update_weights(self, model: torch.nn.Module) -> None:
        self.inner.update_weights(model)

    def generate(self, prompt_ids: Sequence[Sequence[int]], params: Any, *, num_samples: int = 1, seed: int = 0,
                 first_group: int = 0) -> Any:
        if not _WORLD.distributed:
            return self.inner.generate(prompt_ids, params, num_samples=num_samples, seed=seed, first_group=first_group)
        from r1kit.rollout.base import concat

        a, b = spread(len(prompt_ids))
        mine = (self.inner.generate(prompt_ids[a:b], params, num_samples=num_samples, seed=seed,
                                    first_group=first_group + a) if b > a else None)
        return concat([g for g in gather(mine) if g is not None], self.inner.pad_token_id)

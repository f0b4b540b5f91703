"""The `r1kit` command: one subcommand per entry of `r1kit.stages.STAGES`, plus setup-sandbox.

  r1kit zero                                   R1-Zero on the embedded model (recipes/tiny/zero.yaml defaults)
  r1kit zero out_dir=runs/x steps=200          dotted key=value overrides
  r1kit zero --config recipes/qwen2.5-0.5b/zero-gsm8k.yaml
  r1kit zero --print-config > my.yaml          every key with its doc; edit, then r1kit zero --config my.yaml
  r1kit zero --config recipes/qwen2.5-1.5b/zero-gsm8k.yaml --dry-run   the memory plan, one micro-batch per phase
  r1kit grpo --config recipes/tiny/r1-stage2.yaml
  r1kit sft model.path=embedded data=runs/cold/data.jsonl out_dir=runs/dev1 epochs=2
  r1kit eval model=embedded tasks=arithmetic,gsm8k k=8 data_dir=../shared/data limit=64
  r1kit pipeline                               the whole paper in miniature (recipes/tiny/r1.yaml), Table 2 and 6
  r1kit pipeline out_dir=runs/r1 stages=dev1,dev2    a subset; earlier stages' outputs are reused
  r1kit setup-sandbox                          install bubblewrap if missing; check the code sandbox
  r1kit zero dist.nproc=2                      two processes, torch FSDP2 (= torchrun --nproc_per_node 2 -m r1kit zero)
  r1kit zero cluster.backend=ray cluster.trainer_workers=2 cluster.rollout_workers=2    Ray actors

Bad input stops before any work with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from r1kit import distributed as dist
from r1kit.config import ConfigError, config_yaml, load_config
from r1kit.models.loading import ModelLoadError
from r1kit.sandbox import SandboxUnavailableError
from r1kit.stages import STAGES
from r1kit.trainers.checkpoint import CheckpointError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="r1kit", description="Train reasoning models the way DeepSeek-R1 was.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, stage in STAGES.items():
        p = sub.add_parser(name, help=stage.help, description=stage.help)
        p.add_argument("--config", help="YAML recipe (its keys as --print-config shows them)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument("--print-config", action="store_true",
                       help="print the resolved config (recipe + overrides) as YAML, each key with its doc, and exit")
        if stage.dry_run is not None:
            p.add_argument("--dry-run", action="store_true",
                           help="load everything, run one micro-batch of each phase, print the memory plan; "
                                "train nothing, write nothing")
        p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. steps=200 optim.lr=1e-5")
    sub.add_parser("setup-sandbox", help="install bubblewrap (apt, as root) and check that the code sandbox runs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.command == "setup-sandbox":
        from r1kit.sandbox import main_setup_sandbox

        return main_setup_sandbox([])
    stage = STAGES[args.command]
    try:
        cfg: Any = load_config(stage.config, args.config, args.overrides)
        if args.print_config:
            print(config_yaml(cfg), end="")
            return 0
        if getattr(args, "dry_run", False) and stage.dry_run is not None:
            print(stage.dry_run(cfg))
            return 0
        launch = _launcher(cfg)
        if launch is not None:
            if stage.validate is not None:
                stage.validate(cfg)  # bad input stops here, before any process starts
            return launch(cfg, args, sys.argv[1:] if argv is None else list(argv))
        summary = stage.run(cfg, progress=not args.quiet)
    except (ConfigError, ModelLoadError, SandboxUnavailableError, CheckpointError) as e:
        print(f"r1kit: error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # one report per run: rank 0's
    print(stage.report(cfg, summary))
    if args.command not in ("eval", "pipeline"):
        print(json.dumps(summary))
    return 0


def _launcher(cfg: Any) -> Any:
    """How to start the processes a config asks for, or None to run in this one."""
    if getattr(cfg, "cluster", None) is not None and cfg.cluster.backend == "ray":
        return _run_ray
    if getattr(cfg, "dist", None) is not None and cfg.dist.nproc > 1 and dist.launched() == 1:
        return _run_torchrun
    return None


def _run_torchrun(cfg: Any, args: argparse.Namespace, argv: list[str]) -> int:
    """The same command under `torchrun --standalone --nproc_per_node dist.nproc` (one machine)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(cfg.dist.nproc),
           "-m", "r1kit", *argv]
    return subprocess.run(cmd, check=False).returncode


def _run_ray(cfg: Any, args: argparse.Namespace, argv: list[str]) -> int:
    from r1kit.cluster import ClusterError, run_on_ray

    try:
        summary = run_on_ray(args.command, cfg, progress=not args.quiet)
    except ClusterError as e:  # a worker failed mid-run: the message says how to resume
        print(f"r1kit: error: {e}", file=sys.stderr)
        return 1
    print(STAGES[args.command].report(cfg, summary))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `r1kit` command.

  r1kit zero                                   R1-Zero on the embedded model (recipes/tiny/zero.yaml defaults)
  r1kit zero out_dir=runs/x steps=200          dotted key=value overrides
  r1kit zero --config recipes/qwen2.5-0.5b/zero-gsm8k.yaml
  r1kit zero --print-config > my.yaml          every key with its doc; edit, then r1kit zero --config my.yaml
  r1kit eval model=embedded tasks=arithmetic,gsm8k k=8 data_dir=../shared/data limit=64
  r1kit setup-sandbox                          install bubblewrap if missing; check the code sandbox

Bad input stops before any work with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from r1kit.config import ConfigError, EvalRunConfig, ZeroConfig, config_yaml, load_config
from r1kit.models.loading import ModelLoadError
from r1kit.sandbox import SandboxUnavailableError
from r1kit.trainers.checkpoint import CheckpointError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="r1kit", description="Train reasoning models the way DeepSeek-R1 was.")
    sub = parser.add_subparsers(dest="command", required=True)
    zero = sub.add_parser("zero", help="R1-Zero: GRPO from a base model with rule rewards")
    zero.add_argument("--config", help="YAML recipe (default: the tiny CPU recipe's values)")
    zero.add_argument("--quiet", action="store_true", help="no progress bar")
    zero.add_argument("--print-config", action="store_true",
                      help="print the resolved config (recipe + overrides) as YAML, each key with its doc, and exit")
    zero.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. steps=200 optim.lr=1e-5")
    ev = sub.add_parser("eval", help="the paper's evaluation protocol: pass@1 over k samples, cons@k, pass@k")
    ev.add_argument("--config", help="YAML file of EvalRunConfig keys")
    ev.add_argument("--quiet", action="store_true", help="no progress lines")
    ev.add_argument("--print-config", action="store_true",
                    help="print the resolved config (file + overrides) as YAML, each key with its doc, and exit")
    ev.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. model=embedded tasks=gsm8k,math500 k=16")
    sub.add_parser("setup-sandbox", help="install bubblewrap (apt, as root) and check that the code sandbox runs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.command == "setup-sandbox":
        from r1kit.sandbox import main_setup_sandbox

        return main_setup_sandbox([])
    try:
        if args.command == "zero":
            from r1kit.pipeline import run_zero

            cfg = load_config(ZeroConfig, args.config, args.overrides)
            if args.print_config:
                print(config_yaml(cfg), end="")
                return 0
            summary = run_zero(cfg, progress=not args.quiet)
            before, after = summary["before"]["pass@1"], summary["after"]["pass@1"]
            print(f"held-out pass@1 {before:.3f} -> {after:.3f} ({100 * (after - before):+.1f} points) "
                  f"in {summary['wall_seconds']:.0f} s; results in {cfg.out_dir}")
            print(json.dumps(summary))
            return 0
        if args.command == "eval":
            from r1kit.evaluation.protocol import run_eval

            ecfg = load_config(EvalRunConfig, args.config, args.overrides)
            if args.print_config:
                print(config_yaml(ecfg), end="")
                return 0
            report = None if args.quiet else (lambda line: print(f"r1kit eval: {line}", file=sys.stderr))
            results = run_eval(ecfg, progress=report)
            k = ecfg.k
            for name, r in [*results["tasks"].items(), ("overall", results["overall"])]:
                print(f"{name:>16}: pass@1 {r['pass@1']:.3f} [{r['pass@1_ci95'][0]:.3f}, {r['pass@1_ci95'][1]:.3f}]"
                      f"  cons@{k} {r['cons@k']:.3f}  pass@{k} {r['pass@k'][str(k)]:.3f}  ({r['n_prompts']} prompts)")
            print(f"results in {ecfg.out_dir}/results.json, report in {ecfg.out_dir}/report.html")
            return 0
    except (ConfigError, ModelLoadError, SandboxUnavailableError, CheckpointError) as e:
        print(f"r1kit: error: {e}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""Completion log-probs of a model sharded with FSDP2 on two gloo processes: equal to the unsharded model's,
gradients included, through the root-forward path (embeddings and head gathered by the root unit), and a
rank whose micro-batch has one-token completions runs as many forwards as one with longer ones (it would
otherwise wait forever in the other rank's weight all-gather)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import copy, json, os, sys
    import torch
    from r1kit import distributed as dist
    from r1kit.models.loading import load_model
    from r1kit.models.logprobs import completion_logprobs

    torch.set_num_threads(1)
    world = dist.init(torch.device("cpu"))
    torch.manual_seed(0)
    model = load_model("embedded", "float32", torch.device("cpu"))
    plain = copy.deepcopy(model)
    sharded = dist.shard(model, replica=False)
    width = 1 if world.rank == 0 else 3  # rank 0: one-token completions
    prompts = torch.randint(5, 60, (2, 6))
    completions = torch.randint(5, 60, (4, width))
    args = (prompts, torch.ones_like(prompts), torch.tensor([0, 0, 1, 1]), completions, torch.ones_like(completions))
    out, _ = completion_logprobs(sharded, *args, chunk_tokens=2)
    want, _ = completion_logprobs(plain, *args, chunk_tokens=2)
    out.sum().backward()
    want.sum().backward()
    grad = dict(sharded.named_parameters())["model.embed_tokens.weight"].grad.full_tensor()
    summed = dict(plain.named_parameters())["model.embed_tokens.weight"].grad.clone()
    torch.distributed.all_reduce(summed)  # gradients are summed over the ranks, never averaged
    result = {"rank": world.rank, "width": out.shape[1], "gap": (out - want).abs().max().item(),
              "grad_gap": (grad - summed).abs().max().item(), "grad_norm": summed.norm().item()}
    dist.shutdown()
    print("RESULT", json.dumps(result), flush=True)
''')


def test_sharded_log_probs_equal_plain_and_one_token_micro_batches_do_not_hang(tmp_path):
    script = tmp_path / "check.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    results = sorted((json.loads(line.split("RESULT ", 1)[1]) for line in done.stdout.splitlines()
                      if "RESULT " in line), key=lambda r: r["rank"])
    assert [r["width"] for r in results] == [1, 3]
    assert all(r["gap"] < 1e-5 and r["grad_gap"] < 1e-5 and r["grad_norm"] > 0 for r in results), results

"""The value model of PPO: a scalar head on a causal LM's decoder, predicting V(s_t) for every completion
token, where s_t is the prompt and the completion before token t (the state in which token t is chosen).

Two layouts (`ppo.critic`):
- `separate`: a copy of the policy's decoder with its own head and optimizer, initialised from the policy
  (OpenRLHF and the R1 paper's PPO): twice the model memory and an extra forward and backward per pass.
- `head`: the head sits on the policy's own decoder (the shared trunk of `trl`'s old value-head models):
  no second model; the value loss's gradient reaches the shared decoder and is stepped with the policy.
  The value pass is still a second forward over the trunk (the policy's log-prob path does not return
  hidden states), so it saves memory, not compute.

The head starts at zero (V = 0 everywhere): the first advantages are the plain returns, not noise.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch

from r1kit.models.logprobs import _full_sequence, _hidden_forward, _shared_prefix, decoder_and_head, unwrapped

CriticKind = Literal["separate", "head"]


class ValueModel(torch.nn.Module):
    """decoder -> hidden states -> Linear(hidden, 1): values [n, T] of completion tokens."""

    def __init__(self, decoder: torch.nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.decoder = decoder
        self.head = torch.nn.Linear(hidden_size, 1)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, prompt_index: torch.Tensor,
                completion_ids: torch.Tensor, completion_mask: torch.Tensor, *, full_sequence: bool = False
                ) -> torch.Tensor:
        """[n, T] float32 values, 0 on padding; rows as in `completion_logprobs` (row i continues prompt
        `prompt_index[i]`; the prompts are encoded once each unless `full_sequence`)."""
        pick = _full_sequence if full_sequence else _shared_prefix
        hidden = pick(_hidden_forward(self.decoder, self.decoder), prompt_ids, prompt_mask, prompt_index,
                      completion_ids, completion_mask)
        values = self.head(hidden.to(self.head.weight.dtype)).squeeze(-1).float()
        return values * completion_mask.to(values.dtype)


def make_value_model(policy: torch.nn.Module, kind: CriticKind) -> ValueModel:
    """The critic of `policy`: a copy of its decoder (`separate`) or its own decoder (`head`), with a new
    zero head. Raises ValueError for a model whose decoder cannot be told apart from its output head."""
    split = decoder_and_head(policy)
    if split is None:
        raise ValueError("PPO's value model needs a causal LM with get_decoder() and get_output_embeddings(); "
                         f"{type(unwrapped(policy)).__name__} has none")
    hidden = int(unwrapped(policy).config.hidden_size)
    decoder = copy.deepcopy(split[0]) if kind == "separate" else split[0]
    model = ValueModel(decoder, hidden).to(next(policy.parameters()).device)
    if kind == "separate":
        model.decoder.requires_grad_(True)
    return model


def own_parameters(model: ValueModel, kind: CriticKind) -> list[Any]:
    """The parameters the critic's optimizer steps: all of a separate critic, only the head of a shared
    one (the shared decoder belongs to the policy's optimizer)."""
    return list(model.parameters()) if kind == "separate" else list(model.head.parameters())


def critic_state(model: ValueModel, kind: CriticKind) -> dict[str, torch.Tensor]:
    """What a checkpoint keeps of the critic: everything of a separate one, the head of a shared one (its
    decoder is the policy's, saved with it)."""
    module = model if kind == "separate" else model.head
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def load_critic_state(model: ValueModel, kind: CriticKind, state: dict[str, torch.Tensor]) -> None:
    (model if kind == "separate" else model.head).load_state_dict(state)

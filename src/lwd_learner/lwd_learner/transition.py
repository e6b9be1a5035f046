"""`TransitionBatch`: the chunk-level transitions one agent update consumes (docs/method.md, "Notation").

A transition is (o_t, A_t, r, o_{t+nH}, done) on cached encoder features:

- features [B, F]: encoder features of o_t.
- actions [B, H, D]: the *executed* chunk A_t (the operator's on intervention steps), normalized space.
- action_mask [B, H] bool: False on the padding of a chunk that runs past the episode's end (the dataset repeats
  the final action there). The cloning losses leave padding out; the critic takes the chunk as stored (padding
  repeats a real action, so it stays in the data's support), and QAM's loss is on generated chunks, which have
  no padding.
- operator_mask [B, H] bool: the steps a cloning loss learns from with `AgentConfig.base_data` "operator": the
  run of operator-executed steps the chunk starts with, up to the hand-back (all False on a chunk the policy
  started). It lies within action_mask.
- reward [B]: the n-step discounted reward sum Σ_{i<m} γ^{iH} r_{t+iH}, already truncated at the episode's end
  (`lwd_learner.returns.n_step_returns` computes it with per-transition discount γ^H).
- next_features [B, F]: encoder features of the state to bootstrap from, o_{t+mH}.
- done [B] bool: a terminal lies within the window (no bootstrap).
- discount [B]: γ^{mH}, or 0 when done.
- is_intervention [B], is_demo [B] bool: provenance flags, logged. The operator drove the chunk from its first step
  (a takeover or inside an intervention) / the chunk is from a demonstration.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


class TransitionBatchError(ValueError):
    """A TransitionBatch has inconsistent shapes, wrong dtypes or non-finite entries."""


@dataclass
class TransitionBatch:
    """A batch of chunk-level transitions; see the module docstring for every field's meaning."""

    features: Tensor
    actions: Tensor
    action_mask: Tensor
    operator_mask: Tensor
    reward: Tensor
    next_features: Tensor
    done: Tensor
    discount: Tensor
    is_intervention: Tensor
    is_demo: Tensor

    def validate(self, feature_dim: int, horizon: int, action_dim: int) -> None:
        """Raise TransitionBatchError unless the shapes match the agent's and every float entry is finite."""
        size = self.features.shape[0]
        expected = {
            "features": (size, feature_dim),
            "actions": (size, horizon, action_dim),
            "action_mask": (size, horizon),
            "operator_mask": (size, horizon),
            "reward": (size,),
            "next_features": (size, feature_dim),
            "done": (size,),
            "discount": (size,),
            "is_intervention": (size,),
            "is_demo": (size,),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if tuple(value.shape) != shape:
                raise TransitionBatchError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
            if value.dtype.is_floating_point and not bool(torch.isfinite(value).all()):
                raise TransitionBatchError(f"{name} contains NaN or infinite entries")
        for name in ("action_mask", "operator_mask", "done", "is_intervention", "is_demo"):
            if getattr(self, name).dtype != torch.bool:
                raise TransitionBatchError(f"{name} must be a bool tensor, got {getattr(self, name).dtype}")
        if size and not bool(self.action_mask[:, 0].all()):
            raise TransitionBatchError(
                "action_mask must be True on every chunk's first step (chunks start in the episode)"
            )
        if bool((self.operator_mask & ~self.action_mask).any()):
            raise TransitionBatchError("operator_mask must lie within action_mask (padding was never executed)")
        if bool((self.discount < 0).any()) or bool((self.discount > 1).any()):
            raise TransitionBatchError("discount must lie in [0, 1]")
        if bool((self.discount[self.done] != 0).any()):
            raise TransitionBatchError("discount must be 0 on terminal (done) transitions")

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> TransitionBatch:
        """Move to `device`; floating fields also cast to `dtype` when given."""
        moved = {}
        for field in fields(self):
            value: Tensor = getattr(self, field.name)
            cast = dtype if dtype is not None and value.dtype.is_floating_point else value.dtype
            moved[field.name] = value.to(device=device, dtype=cast)
        return TransitionBatch(**moved)

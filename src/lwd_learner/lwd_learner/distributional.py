"""Categorical value distributions for DIVL (docs/method.md, "DIVL: value distribution and adaptive quantile").

V_ψ(·|s) is a categorical distribution over B evenly spaced atoms z_0 < … < z_{B−1} on [v_min, v_max]
(B = 201 on [−0.1, 1.1] by default: sparse 0/1 rewards with γ < 1 give values in [0, 1], the margin keeps
the two-hot targets of slightly overshooting critics representable). This module holds the pure tensor
operations on that support: two-hot projection of scalar targets, the inverse CDF at a per-sample
quantile level, the normalized entropy, and the adaptive quantile level τ(s).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class CategoricalSupport:
    """A fixed, evenly spaced set of value atoms and the operations DIVL needs on it."""

    def __init__(self, num_atoms: int = 201, v_min: float = -0.1, v_max: float = 1.1) -> None:
        if num_atoms < 2:
            raise ValueError(f"num_atoms must be at least 2, got {num_atoms}")
        if not v_max > v_min:
            raise ValueError(f"v_max ({v_max}) must be greater than v_min ({v_min})")
        self.num_atoms = num_atoms
        self.v_min = float(v_min)
        self.v_max = float(v_max)
        self.delta = (self.v_max - self.v_min) / (num_atoms - 1)

    def atoms(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
        """The atom values z_j, shape [B]."""
        return torch.linspace(self.v_min, self.v_max, self.num_atoms, device=device, dtype=dtype)

    def two_hot(self, values: Tensor) -> Tensor:
        """Project scalars [N] onto the support: probabilities [N, B] with mean equal to clip(value).

        A value between atoms z_j ≤ v ≤ z_{j+1} puts weight (z_{j+1} − v)/Δ on z_j and (v − z_j)/Δ on z_{j+1};
        values outside [v_min, v_max] are clipped first.
        """
        if values.dim() != 1:
            raise ValueError(f"two_hot expects values of shape [N], got {tuple(values.shape)}")
        position = (values.clamp(self.v_min, self.v_max) - self.v_min) / self.delta
        lower = position.floor().clamp(max=self.num_atoms - 2)
        upper_weight = position - lower
        probs = torch.zeros(values.shape[0], self.num_atoms, device=values.device, dtype=values.dtype)
        lower_index = lower.long().unsqueeze(1)
        probs.scatter_add_(1, lower_index, (1.0 - upper_weight).unsqueeze(1))
        probs.scatter_add_(1, lower_index + 1, upper_weight.unsqueeze(1))
        return probs

    def quantile(self, probs: Tensor, tau: Tensor) -> Tensor:
        """Inverse CDF at per-sample levels: the smallest atom z_j with Σ_{k≤j} p_k ≥ τ, shape [N].

        `probs` is [N, B] (rows sum to 1), `tau` is [N] in (0, 1].
        """
        if probs.dim() != 2 or probs.shape[1] != self.num_atoms:
            raise ValueError(f"quantile expects probs of shape [N, {self.num_atoms}], got {tuple(probs.shape)}")
        if tau.shape != probs.shape[:1]:
            raise ValueError(f"quantile expects tau of shape [{probs.shape[0]}], got {tuple(tau.shape)}")
        cdf = probs.cumsum(dim=1)
        index = torch.searchsorted(cdf, tau.unsqueeze(1).to(cdf.dtype)).squeeze(1).clamp(max=self.num_atoms - 1)
        return self.v_min + index.to(probs.dtype) * self.delta

    def mean(self, probs: Tensor) -> Tensor:
        """Expected value Σ_j p_j z_j, shape [N]."""
        return probs @ self.atoms(probs.device, probs.dtype)

    def normalized_entropy(self, logits: Tensor) -> Tensor:
        """Entropy of softmax(logits) divided by log B, in [0, 1], shape [N]."""
        log_probs = torch.log_softmax(logits, dim=-1)
        entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
        return entropy / math.log(self.num_atoms)


def adaptive_tau(normalized_entropy: Tensor, tau_base: float, alpha: float, tau_min: float, tau_max: float) -> Tensor:
    """τ(s) = clip(τ_base − α·H_norm(s), τ_min, τ_max), computed without gradient.

    A confident (low-entropy) value distribution gets a higher quantile, so the bootstrap is more optimistic.
    """
    with torch.no_grad():
        return (tau_base - alpha * normalized_entropy.detach()).clamp(tau_min, tau_max)

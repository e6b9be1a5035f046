"""Value and critic heads on frozen encoder features, and the EMA target update.

- `ValueDistributionHead`: logits of V_ψ(·|s) over the categorical support (DIVL).
- `ExpectileValueHead`: scalar V(s) for the IQL-expectile ablation.
- `DoubleQHead`: two independent Q_φ(s, A) heads on (features, flattened action chunk).
- `ema_update`: target ← (1 − τ_ema)·target + τ_ema·online.

The MLPs use LayerNorm: QAM follows ∇_a Q, and an ill-conditioned critic makes it collapse
(docs/method.md, "DIVL: critic").
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def layer_norm_mlp(in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> nn.Sequential:
    """`num_layers` hidden blocks of Linear → LayerNorm → GELU, then a Linear output layer."""
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1, got {num_layers}")
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(num_layers):
        layers += [nn.Linear(width, hidden_dim), nn.LayerNorm(hidden_dim), nn.GELU()]
        width = hidden_dim
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class ValueDistributionHead(nn.Module):
    """V_ψ(·|s): features [B, F] → logits [B, num_atoms]."""

    def __init__(self, feature_dim: int, num_atoms: int, hidden_dim: int, num_layers: int) -> None:
        super().__init__()
        self.net = layer_norm_mlp(feature_dim, hidden_dim, num_atoms, num_layers)

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features)


class ExpectileValueHead(nn.Module):
    """Scalar V(s) for the IQL-expectile ablation: features [B, F] → values [B]."""

    def __init__(self, feature_dim: int, hidden_dim: int, num_layers: int) -> None:
        super().__init__()
        self.net = layer_norm_mlp(feature_dim, hidden_dim, 1, num_layers)

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features).squeeze(-1)


class DoubleQHead(nn.Module):
    """Q_φ(s, A) with two independent heads: (features [B, F], actions [B, H, D]) → values [2, B]."""

    def __init__(self, feature_dim: int, action_numel: int, hidden_dim: int, num_layers: int) -> None:
        super().__init__()
        self.action_numel = action_numel
        self.heads = nn.ModuleList(
            [layer_norm_mlp(feature_dim + action_numel, hidden_dim, 1, num_layers) for _ in range(2)]
        )

    def forward(self, features: Tensor, actions: Tensor) -> Tensor:
        inputs = torch.cat([features, actions.flatten(1)], dim=-1)
        return torch.stack([head(inputs).squeeze(-1) for head in self.heads])


def expectile_loss(diff: Tensor, expectile: float) -> Tensor:
    """IQL's asymmetric L2: mean of |expectile − 1[diff < 0]|·diff², with diff = target − prediction."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.square()).mean()


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, rate: float) -> None:
    """Polyak averaging of parameters and floating buffers: target ← target + rate·(online − target)."""
    for target_tensor, online_tensor in zip(target.state_dict().values(), online.state_dict().values(), strict=True):
        if target_tensor.dtype.is_floating_point:
            target_tensor.lerp_(online_tensor, rate)
        else:
            target_tensor.copy_(online_tensor)

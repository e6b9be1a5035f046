"""Flow-matching BC loss and Euler sampling for action experts (docs/contracts.md flow convention).

An action expert maps (x [B, H, D], t [B], features [B, F]) to a velocity [B, H, D].
Convention: x_t = (1 − t)·noise + t·action, target velocity action − noise, t = 0 is noise.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def flow_matching_loss(flow: nn.Module, features: Tensor, actions: Tensor, generator: torch.Generator) -> Tensor:
    """Mean squared error between flow(x_t, t, s) and action − noise, with t ~ U(0, 1) and noise ~ N(0, I)."""
    noise = torch.randn(actions.shape, generator=generator, device=actions.device, dtype=actions.dtype)
    t = torch.rand(actions.shape[0], generator=generator, device=actions.device, dtype=actions.dtype)
    t_b = t.view(-1, *([1] * (actions.dim() - 1)))
    x_t = (1.0 - t_b) * noise + t_b * actions
    return (flow(x_t, t, features) - (actions - noise)).square().mean()


@torch.no_grad()
def euler_sample(flow: nn.Module, features: Tensor, noise: Tensor, steps: int) -> Tensor:
    """Integrate dx/dt = flow(x, t, s) from t = 0 (noise) to t = 1 with `steps` Euler steps."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    x = noise
    h = 1.0 / steps
    for i in range(steps):
        t = torch.full((x.shape[0],), i * h, device=x.device, dtype=x.dtype)
        x = x + h * flow(x, t, features)
    return x

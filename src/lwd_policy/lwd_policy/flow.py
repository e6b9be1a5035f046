"""Flow-matching primitives shared by the policy and the learner.

Convention (docs/method.md, "The policy"): x_t = (1 − t)·noise + t·action, target velocity
action − noise; sampling integrates from t = 0 (noise) to t = 1 (action) with
K explicit Euler steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

VelocityFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 1000.0) -> torch.Tensor:
    """Embed flow times ``t [B]`` in [0, 1] as ``[B, dim]`` sines and cosines of geometric frequencies."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = (t.float() * max_period).unsqueeze(-1) * frequencies
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def interpolate(noise: torch.Tensor, actions: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The flow's point x_t = (1 − t)·noise + t·action, with ``t [B]`` broadcast over the chunk."""
    tb = t.reshape(-1, *([1] * (actions.dim() - 1)))
    return (1.0 - tb) * noise + tb * actions


def euler_sample(velocity: VelocityFn, features: torch.Tensor, noise: torch.Tensor, steps: int) -> torch.Tensor:
    """Integrate dx/dt = velocity(x, t, features) from t = 0 (``noise``) to t = 1 in ``steps`` Euler steps."""
    if steps <= 0:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    x = noise
    dt = 1.0 / steps
    for i in range(steps):
        t = torch.full((x.shape[0],), i * dt, dtype=x.dtype, device=x.device)
        x = x + dt * velocity(x, t, features)
    return x


def flow_matching_loss(
    model_or_expert: nn.Module,
    actions: torch.Tensor,
    features: torch.Tensor,
    noise: torch.Tensor | None = None,
    t: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Behaviour-cloning flow-matching loss: mean ‖v(x_t, t, features) − (action − noise)‖².

    ``model_or_expert`` is a ``PolicyModel`` (its ``action_expert`` is used) or an
    action expert itself; ``actions [B, H, D]`` are normalized; ``features [B, F]`` come
    from ``encode`` (pass them un-detached to train the encoder too). ``t`` defaults
    to U(0, 1) per sample and ``noise`` to N(0, I).

    ``mask [B, H]`` (bool) selects the chunk steps that are cloned, e.g. not the padding of a chunk that runs
    past the episode's end: the mean then runs over the selected steps only. A mask that selects nothing gives
    a zero loss whose gradients are zero, not missing, so every parameter still gets one (as DDP needs).
    """
    expert = getattr(model_or_expert, "action_expert", model_or_expert)
    if actions.dim() != 3:
        raise ValueError(f"actions must be [B, H, D], got shape {tuple(actions.shape)}")
    if features.shape[0] != actions.shape[0]:
        raise ValueError(f"features batch {features.shape[0]} differs from actions batch {actions.shape[0]}")
    if noise is None:
        noise = torch.randn(actions.shape, generator=generator, dtype=actions.dtype, device=actions.device)
    if t is None:
        t = torch.rand(actions.shape[0], generator=generator, dtype=actions.dtype, device=actions.device)
    x_t = interpolate(noise, actions, t)
    target = actions - noise
    squared = (expert(x_t, t, features) - target) ** 2
    if mask is None:
        return torch.mean(squared)
    if mask.shape != actions.shape[:2]:
        raise ValueError(f"mask must be [B, H] = {tuple(actions.shape[:2])}, got {tuple(mask.shape)}")
    weights = mask.to(squared.dtype).unsqueeze(-1)
    return (squared * weights).sum() / (weights.sum() * actions.shape[-1]).clamp(min=1.0)

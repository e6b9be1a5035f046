"""QAM: Q-learning via adjoint matching, the pieces of one actor update (docs/method.md, "QAM: update step").

The target policy is π*(a|s) ∝ π_β(a|s)·exp(Q(s, a)/λ). With the flow convention x_t = (1 − t)·noise + t·a,
the memoryless SDE of a velocity field f is

    dx = b(x, t) dt + σ_t dB,   b = 2f(x, t) − x/t,   σ_t = √(2(1 − t)/t).

Discretization (K steps, h = 1/K, grid t_i = i·h, i = 0 … K−1). Both x/t and σ_t are singular at t = 0, where
the rollout starts. Like the official QAM code, we evaluate the singular terms one step ahead, at t_i + h, and
the velocity at the grid time t_i (where the flow was trained):

    x_{i+1} = x_i + h·(2f(x_i, t_i) − x_i/(t_i + h)) + √h·σ_i·ε_i,   σ_i = √(2(1 − t_i + h)/(t_i + h)),

for i < K − 1; the last step is a plain ODE step x_K = x_{K−1} + h·f(x_{K−1}, t_{K−1}). (σ_i keeps the
official code's numerator 1 − t_i + h, so it stays positive on the last step, where the loss divides by it.
At i = 0 the x_0 term cancels: x_1 = 2h·f(x_0, 0) + √h·σ_0·ε_0. The official code takes the last ODE step with
the base flow; we take it with f_θ, as docs/method.md says: the rollout is the fine-tuned policy's.)

Lean adjoint: ã_K = −(1/λ)·∇_a Q̄(s, clip(a))|_{a = x_K}, then ã_i = ã_{i+1} + h·[∂b_i/∂x(x_i)]ᵀ ã_{i+1} with
b_i the *base* drift of step i exactly as the rollout uses it (2f_β(x, t_i) − x/(t_i + h), or f_β on the
last ODE step). This makes ã_i the exact gradient of −Q̄(x_K)/λ with respect to x_i through the discretized
base dynamics with the noise held fixed (tested). docs/method.md and the official code evaluate the adjoint's
f_β at t_i + h and use the SDE drift on the ODE step; we use the Jacobian of the step we actually take.

Loss: L = Σ_i ‖2(f_θ(x_i, t_i) − f_β(x_i, t_i))/σ_i + σ_i·ã_i‖², with x_i, ã_i and f_β detached, summed over
steps and action entries and averaged over the batch. Nothing backpropagates through the rollout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class SDETrajectory:
    """A memoryless-SDE rollout: states x_0 … x_K [K+1, B, H, D], grid times t_i [K], noise scales σ_i [K]."""

    xs: Tensor
    times: Tensor
    sigmas: Tensor

    @property
    def steps(self) -> int:
        return self.times.shape[0]


def time_grid(steps: int, device: torch.device | str, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Grid times t_i = i/K [K] and the memoryless noise scales σ_i = √(2(1 − t_i + h)/(t_i + h)) [K]."""
    if steps < 2:
        raise ValueError(f"QAM needs at least 2 flow steps (K−1 SDE steps and a final ODE step), got {steps}")
    h = 1.0 / steps
    times = torch.arange(steps, device=device, dtype=dtype) * h
    sigmas = torch.sqrt(2.0 * (1.0 - times + h) / (times + h))
    return times, sigmas


def step_drift(flow: nn.Module, x: Tensor, t: float, h: float, features: Tensor, last: bool) -> tuple[Tensor, Tensor]:
    """(drift, velocity) of the step at grid time t; drift = f(x, t) on the last (ODE) step, else 2f − x/(t + h)."""
    t_batch = torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)
    velocity = flow(x, t_batch, features)
    if last:
        return velocity, velocity
    return 2.0 * velocity - x / (t + h), velocity


def sde_step(
    flow: nn.Module, x: Tensor, t: float, sigma: float, h: float, features: Tensor, noise: Tensor | None
) -> Tensor:
    """One Euler–Maruyama step x + h·b + √h·σ·ε; `noise` None marks the final, noiseless ODE step."""
    drift, _ = step_drift(flow, x, t, h, features, last=noise is None)
    if noise is None:
        return x + h * drift
    return x + h * drift + math.sqrt(h) * sigma * noise


@torch.no_grad()
def memoryless_rollout(flow: nn.Module, features: Tensor, x0: Tensor, noises: Tensor) -> SDETrajectory:
    """Run the K-step memoryless SDE of `flow` from x0 [B, H, D] with noises [K−1, B, H, D]; keep every x_i."""
    steps = noises.shape[0] + 1
    if noises.shape[1:] != x0.shape:
        raise ValueError(f"noises must be [K-1, *x0.shape] = [K-1, {tuple(x0.shape)}], got {tuple(noises.shape)}")
    times, sigmas = time_grid(steps, x0.device, x0.dtype)
    h = 1.0 / steps
    xs = [x0]
    for i in range(steps):
        noise = noises[i] if i < steps - 1 else None
        xs.append(sde_step(flow, xs[-1], float(times[i]), float(sigmas[i]), h, features, noise))
    return SDETrajectory(xs=torch.stack(xs), times=times, sigmas=sigmas)


def terminal_adjoint(
    q_fn: Callable[[Tensor], Tensor], x_final: Tensor, lam: float, clip: float
) -> tuple[Tensor, Tensor]:
    """ã_K = −(1/λ)·∇_a Q̄(s, clip(a)) at a = x_K, and the per-sample ‖∇_a Q̄‖ [B] for logging.

    `q_fn` maps actions [B, H, D] to Q̄ [B]. The gradient flows through the clip, so entries outside
    [−clip, clip] get no pull (as in the official code); no parameter gradient is accumulated.
    """
    with torch.enable_grad():
        actions = x_final.detach().requires_grad_(True)
        q_value = q_fn(actions.clamp(-clip, clip))
        (grad,) = torch.autograd.grad(q_value.sum(), actions)
    return -grad / lam, grad.flatten(1).norm(dim=1)


def lean_adjoint(
    base_flow: nn.Module, features: Tensor, trajectory: SDETrajectory, adjoint_final: Tensor
) -> tuple[Tensor, Tensor]:
    """ã_i [K, B, H, D] by the backward recursion ã_i = ã_{i+1} + h·(∂b_i/∂x)ᵀ ã_{i+1}, and f_β(x_i, t_i) [K, B, H, D].

    Each step is one vector-Jacobian product of the base drift at x_i; the base flow's parameters get no gradient.
    The base velocities come from the same forward passes, so the loss does not evaluate f_β again.
    """
    steps = trajectory.steps
    h = 1.0 / steps
    adjoint = adjoint_final.detach()
    adjoints: list[Tensor] = [adjoint] * steps
    velocities: list[Tensor] = [adjoint] * steps
    for i in reversed(range(steps)):
        with torch.enable_grad():
            x = trajectory.xs[i].detach().requires_grad_(True)
            drift, velocity = step_drift(base_flow, x, float(trajectory.times[i]), h, features, last=i == steps - 1)
            (vjp,) = torch.autograd.grad(drift, x, grad_outputs=adjoint)
        adjoint = adjoint + h * vjp
        adjoints[i] = adjoint
        velocities[i] = velocity.detach()
    return torch.stack(adjoints), torch.stack(velocities)


def adjoint_matching_loss(
    fine_flow: nn.Module, features: Tensor, trajectory: SDETrajectory, adjoints: Tensor, base_velocities: Tensor
) -> tuple[Tensor, Tensor]:
    """L = Σ_i ‖2(f_θ(x_i, t_i) − f_β(x_i, t_i))/σ_i + σ_i·ã_i‖² (batch mean), and the mean ‖f_θ − f_β‖².

    `base_velocities` are f_β(x_i, t_i) [K, B, H, D] (from `lean_adjoint`). All K steps go through f_θ as one
    batch of K·B. Gradients reach only f_θ.
    """
    steps = trajectory.steps
    batch = features.shape[0]
    xs = trajectory.xs[:steps].detach().flatten(0, 1)
    times = trajectory.times.repeat_interleave(batch)
    repeated_features = features.detach().repeat(steps, 1)
    shape = (steps * batch,) + (1,) * (xs.dim() - 1)
    sigmas = trajectory.sigmas.repeat_interleave(batch).view(shape)
    fine = fine_flow(xs, times, repeated_features)
    base = base_velocities.detach().flatten(0, 1)
    residual = 2.0 * (fine - base) / sigmas + sigmas * adjoints.detach().flatten(0, 1)
    loss = residual.square().flatten(1).sum(dim=1).view(steps, batch).sum(dim=0).mean()
    divergence = (fine.detach() - base).square().flatten(1).sum(dim=1).mean()
    return loss, divergence

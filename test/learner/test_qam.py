"""QAM: the lean adjoint against autograd, the adjoint-matching loss, and a two-mode toy bandit."""

from __future__ import annotations

import math

import pytest
import torch
from lwd_learner.qam import (
    adjoint_matching_loss,
    lean_adjoint,
    memoryless_rollout,
    sde_step,
    terminal_adjoint,
    time_grid,
)
from lwd_policy.flow import euler_sample, flow_matching_loss
from policy.tiny_policy import TinyFlow
from torch import Tensor


def test_time_grid_keeps_sigma_finite_and_positive():
    times, sigmas = time_grid(10, "cpu", torch.float64)
    torch.testing.assert_close(times, torch.arange(10, dtype=torch.float64) / 10)
    assert sigmas[0].item() == pytest.approx(math.sqrt(2 * 1.1 / 0.1))
    assert sigmas[-1].item() == pytest.approx(math.sqrt(2 * 0.2 / 1.0))
    assert bool((sigmas[1:] < sigmas[:-1]).all())
    with pytest.raises(ValueError, match="at least 2 flow steps"):
        time_grid(1, "cpu", torch.float64)


def test_lean_adjoint_equals_autograd_through_the_discretized_base_dynamics():
    torch.manual_seed(0)
    steps, batch, horizon, action_dim, feature_dim, lam, clip = 6, 4, 3, 2, 5, 0.5, 1.0
    base = TinyFlow(feature_dim, horizon, action_dim).double()
    features = torch.randn(batch, feature_dim, dtype=torch.float64)
    x0 = torch.randn(batch, horizon, action_dim, dtype=torch.float64)
    noises = torch.randn(steps - 1, batch, horizon, action_dim, dtype=torch.float64)
    centre = torch.randn(horizon, action_dim, dtype=torch.float64) * 0.5

    def q_fn(actions: Tensor) -> Tensor:
        return -(actions - centre).square().flatten(1).sum(dim=1) + actions[:, 0, 0] ** 3

    trajectory = memoryless_rollout(base, features, x0, noises)
    adjoint_final, grad_norm = terminal_adjoint(q_fn, trajectory.xs[-1], lam, clip)
    adjoints, _ = lean_adjoint(base, features, trajectory, adjoint_final)
    assert all(p.grad is None for p in base.parameters())

    # Reference: autograd of −Q(clip(x_K))/λ with respect to every x_i through the same steps, noise fixed.
    times, sigmas = time_grid(steps, "cpu", torch.float64)
    xs = [x0.clone().requires_grad_(True)]
    for i in range(steps):
        noise = noises[i] if i < steps - 1 else None
        xs.append(sde_step(base, xs[-1], float(times[i]), float(sigmas[i]), 1.0 / steps, features, noise))
        xs[-1].retain_grad()
    torch.testing.assert_close(torch.stack(xs).detach(), trajectory.xs)
    (-q_fn(xs[-1].clamp(-clip, clip)).sum() / lam).backward()

    torch.testing.assert_close(adjoint_final, xs[-1].grad)
    assert grad_norm.shape == (batch,) and bool((grad_norm > 0).all())
    for i in range(steps):
        relative = (adjoints[i] - xs[i].grad).norm() / xs[i].grad.norm()
        assert relative.item() < 1e-4, (i, relative.item())
    # The recursion is not trivial: the adjoint changes substantially from x_K back to x_0.
    assert ((adjoints[0] - adjoint_final).norm() / adjoint_final.norm()).item() > 0.05


def test_adjoint_matching_loss_reduces_to_sigma_weighted_adjoint_norm_and_trains_only_the_fine_flow():
    torch.manual_seed(1)
    steps, batch = 4, 3
    base = TinyFlow(2, 2, 2).double()
    fine = TinyFlow(2, 2, 2).double()
    fine.load_state_dict(base.state_dict())
    features = torch.randn(batch, 2, dtype=torch.float64)
    trajectory = memoryless_rollout(
        fine,
        features,
        torch.randn(batch, 2, 2, dtype=torch.float64),
        torch.randn(steps - 1, batch, 2, 2, dtype=torch.float64),
    )
    _, base_velocities = lean_adjoint(base, features, trajectory, torch.ones(batch, 2, 2, dtype=torch.float64))
    for i in range(steps):
        t = torch.full((batch,), float(trajectory.times[i]), dtype=torch.float64)
        torch.testing.assert_close(base_velocities[i], base(trajectory.xs[i], t, features).detach())
    adjoints = torch.randn(steps, batch, 2, 2, dtype=torch.float64)
    loss, divergence = adjoint_matching_loss(fine, features, trajectory, adjoints, base_velocities)
    expected = (trajectory.sigmas.view(steps, 1, 1, 1) ** 2 * adjoints.square()).sum(dim=(0, 2, 3)).mean()
    torch.testing.assert_close(loss, expected)
    assert divergence.item() < 1e-20
    loss.backward()
    assert all(p.grad is None for p in base.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in fine.parameters())


def _two_mode_actions(size: int, generator: torch.Generator) -> Tensor:
    """Chunks [size, 1, 2] around (−0.6, −0.6) or (+0.6, +0.6), equally often, spread 0.05."""
    sign = torch.where(torch.rand(size, 1, 1, generator=generator) < 0.5, -1.0, 1.0)
    return 0.6 * sign + 0.05 * torch.randn(size, 1, 2, generator=generator)


def _mode_fractions(actions: Tensor) -> tuple[float, float]:
    """(fraction near the preferred + mode, fraction within 0.25 of either mode in every entry)."""
    flat = actions.flatten(1)
    near_plus = ((flat - 0.6).abs() < 0.25).all(dim=1)
    near_minus = ((flat + 0.6).abs() < 0.25).all(dim=1)
    return near_plus.float().mean().item(), (near_plus | near_minus).float().mean().item()


def test_qam_on_a_two_mode_bandit_moves_mass_to_the_preferred_mode_within_the_data_support():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    steps, lam, clip = 8, 0.1, 1.0
    features = torch.zeros(256, 1)
    base = TinyFlow(1, 1, 2, width=64)
    optimizer = torch.optim.Adam(base.parameters(), lr=3e-3)
    for _ in range(800):
        optimizer.zero_grad()
        flow_matching_loss(base, _two_mode_actions(256, generator), features, generator=generator).backward()
        optimizer.step()
    fine = TinyFlow(1, 1, 2, width=64)
    fine.load_state_dict(base.state_dict())

    def q_fn(actions: Tensor) -> Tensor:  # Q prefers the + mode
        return actions.flatten(1).mean(dim=1)

    optimizer = torch.optim.Adam(fine.parameters(), lr=1e-3)
    for _ in range(150):
        x0 = torch.randn(256, 1, 2, generator=generator)
        noises = torch.randn(steps - 1, 256, 1, 2, generator=generator)
        trajectory = memoryless_rollout(fine, features, x0, noises)
        adjoint_final, _ = terminal_adjoint(q_fn, trajectory.xs[-1], lam, clip)
        adjoints, base_velocities = lean_adjoint(base, features, trajectory, adjoint_final)
        loss, _ = adjoint_matching_loss(fine, features, trajectory, adjoints, base_velocities)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(fine.parameters(), 1.0)
        optimizer.step()

    noise = torch.randn(4000, 1, 2, generator=generator)
    probe = torch.zeros(4000, 1)
    base_plus, base_support = _mode_fractions(euler_sample(base, probe, noise, steps))
    fine_plus, fine_support = _mode_fractions(euler_sample(fine, probe, noise, steps))
    assert 0.3 < base_plus < 0.7 and base_support > 0.8
    assert fine_plus > base_plus + 0.25
    assert fine_support > 0.8

"""QAM: the lean adjoint against autograd, the adjoint-matching loss, and a two-mode toy bandit."""

from __future__ import annotations

import math

import pytest
import torch
from lwd_learner.qam import (
    SDETrajectory,
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


def _random_rollout(flow: TinyFlow, batch: int, steps: int) -> tuple[torch.Tensor, object]:
    """Random features and a memoryless rollout of ``flow`` from random noise, in float64."""
    features = torch.randn(batch, 2, dtype=torch.float64)
    noise = torch.randn(batch, 2, 2, dtype=torch.float64)
    return features, memoryless_rollout(flow, features, noise, torch.randn(steps - 1, batch, 2, 2, dtype=torch.float64))


def test_adjoint_matching_loss_reduces_to_sigma_weighted_adjoint_norm_and_trains_only_the_fine_flow():
    torch.manual_seed(1)
    steps, batch = 4, 3
    base = TinyFlow(2, 2, 2).double()
    fine = TinyFlow(2, 2, 2).double()
    fine.load_state_dict(base.state_dict())
    features, trajectory = _random_rollout(fine, batch, steps)
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


def test_adjoint_matching_loss_evaluates_every_step_of_a_fine_flow_that_differs_from_the_base():
    """f_θ ≠ f_β: the loss and the divergence follow the formula step by step, each x_i paired with its own t_i."""
    torch.manual_seed(2)
    steps, batch = 5, 3
    base = TinyFlow(2, 2, 2).double()
    fine = TinyFlow(2, 2, 2).double()
    features, trajectory = _random_rollout(fine, batch, steps)
    adjoints, base_velocities = lean_adjoint(base, features, trajectory, torch.randn(batch, 2, 2, dtype=torch.float64))
    loss, divergence = adjoint_matching_loss(fine, features, trajectory, adjoints, base_velocities)
    expected_loss = torch.zeros(batch, dtype=torch.float64)
    expected_divergence = torch.zeros((), dtype=torch.float64)
    for i in range(steps):
        t = torch.full((batch,), float(trajectory.times[i]), dtype=torch.float64)
        gap = fine(trajectory.xs[i], t, features) - base(trajectory.xs[i], t, features)
        sigma = trajectory.sigmas[i]
        expected_loss += (2 * gap / sigma + sigma * adjoints[i]).square().sum(dim=(1, 2))
        expected_divergence += gap.square().sum(dim=(1, 2)).mean() / steps
    torch.testing.assert_close(loss, expected_loss.mean().detach())
    torch.testing.assert_close(divergence, expected_divergence.detach())
    assert divergence.item() > 1e-3


class _Constant(torch.nn.Module):
    """A velocity field that is one learnable constant c everywhere."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = torch.nn.Parameter(torch.tensor(value, dtype=torch.float64))

    def forward(self, x: Tensor, t: Tensor, features: Tensor) -> Tensor:
        return self.value * torch.ones_like(x)


def test_adjoint_matching_pins_the_coefficient_and_sign_of_the_fine_minus_base_term():
    """By hand, K = 2 steps of h = 1/2 at t = (0, 1/2), so σ_i = √(2(1 − t_i + h)/(t_i + h)) = (√6, √2); one action
    entry, f_θ ≡ c = 1 and f_β ≡ 1/2, so 2(f_θ − f_β)/σ_i = 1/σ_i. Sample 1 has ã = (1/10, −1/2), sample 2 ã = 0:

        sample 1: (1/√6 + √6/10)² + (1/√2 − √2/2)² = (1/6 + 1/5 + 3/50) + 0 = 32/75
        sample 2: (1/√6)² + (1/√2)² = 2/3 = 50/75                  L = (32/75 + 50/75)/2 = 41/75

    dL/dc = mean over samples of Σ_i 2·r_i·(2/σ_i) = ((2·1.6/√6)·(2/√6) + 4/6 + 4/2)/2 = (16/15 + 8/3)/2 = 28/15 > 0:
    f_θ is pulled down from above f_β, toward f_β − σ_i²·ã_i/2 (where sample 1's second step already is).
    With the term's sign flipped L would be 101/75; with coefficient 1 instead of 2, 37/150.
    """
    times, sigmas = time_grid(2, "cpu", torch.float64)
    torch.testing.assert_close(sigmas, torch.tensor([6.0, 2.0], dtype=torch.float64).sqrt())
    fine = _Constant(1.0)
    trajectory = SDETrajectory(xs=torch.zeros(3, 2, 1, 1, dtype=torch.float64), times=times, sigmas=sigmas)
    base_velocities = torch.full((2, 2, 1, 1), 0.5, dtype=torch.float64)
    adjoints = torch.tensor([[0.1, 0.0], [-0.5, 0.0]], dtype=torch.float64).view(2, 2, 1, 1)
    features = torch.zeros(2, 1, dtype=torch.float64)
    loss, divergence = adjoint_matching_loss(fine, features, trajectory, adjoints, base_velocities)
    torch.testing.assert_close(loss, torch.tensor(41 / 75, dtype=torch.float64))
    torch.testing.assert_close(divergence, torch.tensor(0.25, dtype=torch.float64))
    loss.backward()
    torch.testing.assert_close(fine.value.grad, torch.tensor(28 / 15, dtype=torch.float64))


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

"""DIVL: categorical support maths, adaptive τ, n-step targets, and value ranking on a small offline dataset."""

from __future__ import annotations

import math

import pytest
import torch
from lwd_learner.agent import AgentConfig, LWDAgent, TransitionBatch
from lwd_learner.distributional import CategoricalSupport, adaptive_tau
from lwd_learner.returns import n_step_returns, n_step_targets
from torch import Tensor, nn


class TinyFlow(nn.Module):
    """A small MLP velocity net with the action-expert signature (x [B,H,D], t [B], features [B,F]) -> v."""

    def __init__(self, feature_dim: int, horizon: int, action_dim: int, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(feature_dim + horizon * action_dim + 1, width), nn.GELU(), nn.Linear(width, horizon * action_dim)
        )

    def forward(self, x: Tensor, t: Tensor, features: Tensor) -> Tensor:
        return self.net(torch.cat([x.flatten(1), t.unsqueeze(1), features], dim=1)).view_as(x)


def test_two_hot_matches_hand_computed_weights():
    support = CategoricalSupport(num_atoms=5, v_min=0.0, v_max=1.0)  # atoms 0, .25, .5, .75, 1
    probs = support.two_hot(torch.tensor([0.3, 1.0, -0.5, 2.0, 0.5], dtype=torch.float64))
    expected = torch.tensor(
        [
            [0.0, 0.8, 0.2, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
            [1.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
            [0.0, 0.0, 1.0, 0.0, 0.0],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(probs, expected)


def test_two_hot_on_the_default_support_preserves_the_mean():
    support = CategoricalSupport()
    assert support.num_atoms == 201 and support.v_min == -0.1 and support.v_max == 1.1
    values = torch.tensor([-0.1, 0.0, 0.123456, 0.5, 0.98765, 1.1], dtype=torch.float64)
    probs = support.two_hot(values)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(6, dtype=torch.float64))
    torch.testing.assert_close(support.mean(probs), values)
    assert int((probs > 0).sum(dim=1).max()) <= 2


def test_categorical_quantile_is_the_inverse_cdf_at_per_sample_tau():
    support = CategoricalSupport(num_atoms=5, v_min=0.0, v_max=1.0)
    row = torch.tensor([0.125, 0.25, 0.375, 0.25, 0.0])  # CDF 0.125, 0.375, 0.75, 1, 1
    taus = torch.tensor([0.1, 0.125, 0.2, 0.375, 0.5, 0.75, 0.76, 1.0])
    result = support.quantile(row.expand(len(taus), 5), taus)
    torch.testing.assert_close(result, torch.tensor([0.0, 0.0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75]))


def test_quantile_of_a_two_hot_target_picks_the_neighbouring_atoms():
    support = CategoricalSupport(num_atoms=5, v_min=0.0, v_max=1.0)
    probs = support.two_hot(torch.tensor([0.3, 0.3]))  # 0.8 on 0.25, 0.2 on 0.5
    torch.testing.assert_close(support.quantile(probs, torch.tensor([0.5, 0.9])), torch.tensor([0.25, 0.5]))


def test_quantile_rejects_mismatched_shapes():
    support = CategoricalSupport(num_atoms=5)
    with pytest.raises(ValueError, match="tau of shape"):
        support.quantile(torch.full((3, 5), 0.2), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="num_atoms"):
        CategoricalSupport(num_atoms=1)


def test_normalized_entropy_is_one_for_uniform_and_near_zero_for_a_point_mass():
    support = CategoricalSupport()
    logits = torch.zeros(2, 201)
    logits[1, 17] = 100.0
    entropy = support.normalized_entropy(logits)
    assert entropy[0].item() == pytest.approx(1.0, abs=1e-6)
    assert entropy[1].item() < 1e-6


def test_adaptive_tau_is_monotone_non_increasing_in_entropy_and_clipped():
    entropy = torch.linspace(0.0, 1.0, 101, requires_grad=True)
    tau = adaptive_tau(entropy, tau_base=0.9, alpha=0.5, tau_min=0.5, tau_max=0.85)
    assert not tau.requires_grad
    assert bool((tau[1:] <= tau[:-1]).all())
    assert tau[0].item() == pytest.approx(0.85) and tau[-1].item() == pytest.approx(0.5)
    assert tau[50].item() == pytest.approx(0.9 - 0.5 * 0.5)
    assert tau[20].item() > tau[60].item()


def test_adaptive_tau_from_real_distributions_rises_with_confidence():
    support = CategoricalSupport()
    sharp = support.two_hot(torch.tensor([0.7])).log()
    spread = torch.zeros(1, 201)
    logits = torch.cat([sharp.clamp(min=-30.0), torch.randn(1, 201) * 0.1, spread])
    tau = adaptive_tau(support.normalized_entropy(logits), 0.9, 0.5, 0.5, 0.95)
    assert tau[0] > tau[1] >= tau[2]


def test_n_step_targets_truncate_at_a_terminal():
    rewards = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    dones = torch.tensor([False, False, True])
    bootstrap = torch.tensor([10.0, 20.0, 40.0], dtype=torch.float64)
    reward_sum, discount, steps = n_step_returns(rewards, dones, gamma=0.5, n=2)
    torch.testing.assert_close(reward_sum, torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    torch.testing.assert_close(discount, torch.tensor([0.25, 0.0, 0.0], dtype=torch.float64))
    assert steps.tolist() == [2, 2, 1]
    targets = n_step_targets(rewards, dones, bootstrap, gamma=0.5, n=2)
    torch.testing.assert_close(targets, torch.tensor([0.25 * 20.0, 0.5, 1.0], dtype=torch.float64))


def test_n_step_targets_bootstrap_from_the_last_state_when_the_data_ends_without_terminal():
    rewards = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    dones = torch.zeros(3, dtype=torch.bool)
    bootstrap = torch.tensor([10.0, 20.0, 40.0], dtype=torch.float64)
    targets = n_step_targets(rewards, dones, bootstrap, gamma=0.5, n=3)
    expected = [1 + 1 + 0.75 + 0.125 * 40, 2 + 1.5 + 0.25 * 40, 3 + 0.5 * 40]
    torch.testing.assert_close(targets, torch.tensor(expected, dtype=torch.float64))


def test_one_step_targets_are_r_plus_discounted_bootstrap():
    rewards = torch.tensor([0.0, 1.0, 0.0, 0.5])
    dones = torch.tensor([False, True, False, False])
    bootstrap = torch.tensor([2.0, 3.0, 4.0, 5.0])
    gamma = 0.99**20
    targets = n_step_targets(rewards, dones, bootstrap, gamma=gamma, n=1)
    torch.testing.assert_close(targets, torch.tensor([gamma * 2.0, 1.0, gamma * 4.0, 0.5 + gamma * 5.0]))
    with pytest.raises(ValueError, match="n must be"):
        n_step_targets(rewards, dones, bootstrap, gamma=gamma, n=0)


def _chain_dataset(size: int, generator: torch.Generator) -> tuple[TransitionBatch, float]:
    """s0 --good--> s_good (data succeeds 60%), s0 --bad--> s_bad (data always fails); one-hot state features.

    Chunk actions are [H=2, D=1]; good = +0.5, bad = −0.5 at s0; success = +0.8, failure = −0.8 later.
    """
    horizon = 2
    discount = 0.99**horizon
    eye = torch.eye(3)
    start = torch.randint(0, 2, (size,), generator=generator)  # 0: from s0, 1: from s_good/s_bad
    went_good = torch.rand(size, generator=generator) < 0.5
    success = torch.rand(size, generator=generator) < 0.6
    features = torch.where(start[:, None] == 0, eye[0], torch.where(went_good[:, None], eye[1], eye[2]))
    first_action = torch.where(went_good, 0.5, -0.5)
    later_action = torch.where(went_good & success, 0.8, -0.8)
    action = torch.where(start == 0, first_action, later_action)
    reward = torch.where((start == 1) & went_good & success, 1.0, 0.0)
    done = start == 1
    next_features = torch.where(went_good[:, None], eye[1], eye[2])
    batch = TransitionBatch(
        features=features,
        actions=action.view(size, 1, 1).expand(size, horizon, 1).clone(),
        action_mask=torch.ones(size, horizon, dtype=torch.bool),
        operator_mask=torch.zeros(size, horizon, dtype=torch.bool),
        reward=reward,
        next_features=torch.where(done[:, None], torch.zeros(3), next_features),
        done=done,
        discount=torch.where(done, 0.0, discount),
        is_intervention=torch.zeros(size, dtype=torch.bool),
        is_demo=torch.zeros(size, dtype=torch.bool),
    )
    return batch, discount


def test_divl_ranks_a_good_and_a_bad_action_and_bootstraps_optimistically():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    config = AgentConfig(
        feature_dim=3, horizon=2, action_dim=1, hidden_dim=64, flow_steps=2, lr=1e-3, ema=0.05, tau_min=0.55
    )
    agent = LWDAgent(config, TinyFlow(3, 2, 1, width=16))
    for _ in range(400):
        batch, discount = _chain_dataset(128, generator)
        figures = agent.update(batch)
    assert all(math.isfinite(value) for value in figures.values())
    s0 = torch.eye(3)[:1].expand(2, 3)
    chunks = torch.tensor([0.5, -0.5]).view(2, 1, 1).expand(2, 2, 1)
    q_good, q_bad = agent.critic(s0, chunks).mean(dim=0).tolist()
    assert q_good > q_bad + 0.5
    # The data's mean return after the good action is 0.6·γ^H; the upper quantile bootstraps from the successes.
    assert q_good > 0.85 * discount
    assert abs(q_bad) < 0.1
    assert 0.55 <= figures["tau_min"] <= figures["tau_max"] <= 0.95

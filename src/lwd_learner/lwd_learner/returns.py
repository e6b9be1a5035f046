"""n-step returns with truncation at episode end (docs/method.md, "DIVL: critic").

The functions work on one episode's chunk-level transitions in time order: transition t goes from o_t to
o_{t+1} (one chunk of H control steps later). `gamma` is the per-transition discount, i.e. γ^H for chunks
of H steps. The dataset side uses `n_step_returns` to build `TransitionBatch` fields (reward, discount and
which next state to bootstrap from); `n_step_targets` turns them into critic targets given bootstrap values.
"""

from __future__ import annotations

import torch
from torch import Tensor


def n_step_returns(rewards: Tensor, dones: Tensor, gamma: float, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per transition t: (Σ_{i<m} γ^i r_{t+i}, discount, m) with m = min(n, steps to the episode's end).

    - If a terminal transition (done) comes within the window, the sum stops there and discount is 0.
    - If the episode's data ends before n steps without a terminal (a time-limit cut), the return bootstraps
      from the last available next state with discount γ^m.
    - Otherwise discount is γ^n. The next state to bootstrap from is that of transition t + m − 1.

    `rewards` and `dones` are [T]; returns float tensors reward_sum [T], discount [T] and long offsets m [T].
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if rewards.dim() != 1 or dones.shape != rewards.shape:
        raise ValueError(f"rewards and dones must both be [T], got {tuple(rewards.shape)} and {tuple(dones.shape)}")
    length = rewards.shape[0]
    done = dones.bool()
    reward_sum = torch.zeros(length, dtype=rewards.dtype, device=rewards.device)
    discount = torch.ones(length, dtype=rewards.dtype, device=rewards.device)
    steps = torch.zeros(length, dtype=torch.long, device=rewards.device)
    alive = torch.ones(length, dtype=torch.bool, device=rewards.device)
    index = torch.arange(length, device=rewards.device)
    for i in range(n):
        source = index + i
        active = alive & (source < length)
        clamped = source.clamp(max=length - 1)
        reward_sum = reward_sum + torch.where(active, discount * rewards[clamped], torch.zeros_like(reward_sum))
        discount = torch.where(active, discount * gamma, discount)
        steps = steps + active.long()
        terminal = active & done[clamped]
        discount = torch.where(terminal, torch.zeros_like(discount), discount)
        alive = active & ~terminal
    return reward_sum, discount, steps


def n_step_targets(rewards: Tensor, dones: Tensor, bootstrap: Tensor, gamma: float, n: int) -> Tensor:
    """Critic targets y_t = Σ_{i<m} γ^i r_{t+i} + discount_t · bootstrap[t + m − 1], shape [T].

    `bootstrap[k]` is the value of the next state of transition k (e.g. the τ-quantile of V_ψ(·|s_{k+1})).
    Terminals contribute no bootstrap; see `n_step_returns` for the truncation rules.
    """
    if bootstrap.shape != rewards.shape:
        raise ValueError(f"bootstrap must match rewards' shape {tuple(rewards.shape)}, got {tuple(bootstrap.shape)}")
    reward_sum, discount, steps = n_step_returns(rewards, dones, gamma, n)
    next_index = torch.arange(rewards.shape[0], device=rewards.device) + steps - 1
    return reward_sum + discount * bootstrap[next_index]

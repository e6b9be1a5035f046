"""A small MLP velocity net with the action-expert signature, for agent and QAM tests that must not
depend on the policy package's default model sizes."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TinyFlow(nn.Module):
    """(x [B,H,D], t [B], features [B,F]) -> v [B,H,D]."""

    def __init__(self, feature_dim: int, horizon: int, action_dim: int, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(feature_dim + horizon * action_dim + 1, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, horizon * action_dim),
        )

    def forward(self, x: Tensor, t: Tensor, features: Tensor) -> Tensor:
        return self.net(torch.cat([x.flatten(1), t.unsqueeze(1), features], dim=1)).view_as(x)

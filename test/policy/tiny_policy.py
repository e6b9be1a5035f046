"""A deliberately small policy type, registered as ``TinyMLPPolicy``: all that adding a policy to LWD takes.

``TinyPolicyConfig`` adds two widths to the shared I/O fields; ``TinyPolicy`` encodes an observation with
an MLP over each camera's mean colour, the instruction embedding and the proprio vector, and acts through
``TinyFlow``. The agent and QAM tests also use ``TinyFlow`` on its own, as an action expert whose size
does not depend on the built-in model's defaults. Importing this module registers the type.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lwd_policy.contract import ObservationBatch, PolicyConfig, PolicyModel, register_policy
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


@dataclass(frozen=True)
class TinyPolicyConfig(PolicyConfig):
    """The shared I/O fields, plus the MLPs' ``width`` and the feature width F."""

    width: int = 32
    feature_dim: int = 16

    def validate(self) -> None:
        super().validate()
        self.require_positive("width", "feature_dim")


@register_policy("TinyMLPPolicy", TinyPolicyConfig)
class TinyPolicy(PolicyModel):
    """Mean colours + instruction embedding + proprio → MLP features; ``TinyFlow`` action expert."""

    config: TinyPolicyConfig

    def __init__(self, config: TinyPolicyConfig) -> None:
        super().__init__(config)
        inputs = 3 * len(config.cameras) + config.language_dim + config.state_dim
        self.encoder = nn.Sequential(
            nn.Linear(inputs, config.width), nn.SiLU(), nn.Linear(config.width, config.feature_dim)
        )
        self.action_expert = TinyFlow(config.feature_dim, config.horizon, config.action_dim, config.width)

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    def encode(self, batch: ObservationBatch) -> Tensor:
        batch.validate(self.config)
        colours = [batch.images[camera].float().mean(dim=(2, 3)) / 255.0 for camera in self.config.cameras]
        inputs = torch.cat([*colours, batch.instruction_embedding.float(), batch.proprio.float()], dim=-1)
        return self.encoder(inputs)

"""What any VLA must provide to run in the LWD runtime and be trained by the learner.

The built-in ``FlowMatchingVLA`` satisfies this protocol. A larger model (for
example a LeRobot pi0/SmolVLA policy) plugs in by wrapping it in a class with
these members: an observation encoder producing features, a flow-matching
action expert over normalized H×D chunks, and Euler sampling. The learner's
DIVL/QAM code touches nothing else; the runtime additionally needs ``config``
for the I/O shapes (cameras, image size, horizon, action dim, control period).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from lwd_policy.config import VLAConfig
from lwd_policy.model import ObservationBatch


@runtime_checkable
class VLAPolicy(Protocol):
    """A flow-matching VLA as seen by the runtime and the learner.

    - ``config``: I/O shapes; ``config.horizon`` × ``config.action_dim`` is the chunk.
    - ``encode(batch)``: ``ObservationBatch`` → features ``[B, F]`` (the frozen backbone online).
    - ``action_expert``: an ``nn.Module`` with ``forward(x [B,H,D], t [B], features [B,F]) -> v [B,H,D]``;
      deep-copyable, holding no reference to the encoder.
    - ``velocity(x, t, features)``: same as ``action_expert(x, t, features)``.
    - ``sample(features, noise=None, steps=None, generator=None)``: normalized chunks ``[B,H,D]``,
      x_t = (1 − t)·noise + t·action, Euler from t = 0 to 1.
    """

    config: VLAConfig
    action_expert: nn.Module

    def encode(self, batch: ObservationBatch) -> torch.Tensor:
        """Observation → features ``[B, F]``."""
        ...

    def velocity(self, x: torch.Tensor, t: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Flow velocity ``[B, H, D]``."""
        ...

    def sample(
        self,
        features: torch.Tensor,
        noise: torch.Tensor | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Normalized action chunks ``[B, H, D]``."""
        ...

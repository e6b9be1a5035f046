"""The built-in flow-matching vision-language-action model.

``encode`` turns an observation (camera images, instruction embedding, normalized
proprio) into one feature vector; the ``ActionExpert`` is a flow-matching head that
maps (x_t, t, features) to a velocity over an H×D action chunk; ``sample`` runs K
Euler steps from Gaussian noise. The learner only relies on ``encode``,
``action_expert`` / ``velocity`` and ``sample`` (docs/contracts.md "Policy model").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lwd_policy.config import VLAConfig
from lwd_policy.flow import euler_sample, flow_matching_loss, sinusoidal_embedding

__all__ = [
    "ActionExpert",
    "FlowMatchingVLA",
    "ObservationBatch",
    "ObservationError",
    "ProprioEncoder",
    "VisionEncoder",
    "flow_matching_loss",
]


class ObservationError(ValueError):
    """An observation batch does not match the model's configuration."""


@dataclass
class ObservationBatch:
    """Model inputs for B observations.

    ``images``: ``{camera: uint8 [B, 3, h, w]}``; ``instruction_embedding``: ``[B, language_dim]``;
    ``proprio``: ``[B, state_dim]`` already normalized (joint positions, then object positions; see
    ``lwd_policy.proprio``).
    """

    images: dict[str, torch.Tensor]
    instruction_embedding: torch.Tensor
    proprio: torch.Tensor

    @property
    def batch_size(self) -> int:
        """B."""
        return int(self.proprio.shape[0])

    def to(self, device: torch.device | str) -> ObservationBatch:
        """A copy with every tensor on ``device``."""
        return ObservationBatch(
            images={name: image.to(device) for name, image in self.images.items()},
            instruction_embedding=self.instruction_embedding.to(device),
            proprio=self.proprio.to(device),
        )

    def validate(self, config: VLAConfig) -> None:
        """Raise ObservationError naming the first tensor whose shape or dtype is wrong."""
        batch = self.batch_size
        expected_proprio = (batch, config.state_dim)
        if tuple(self.proprio.shape) != expected_proprio:
            raise ObservationError(f"proprio must be {expected_proprio}, got {tuple(self.proprio.shape)}")
        expected_language = (batch, config.language_dim)
        if tuple(self.instruction_embedding.shape) != expected_language:
            raise ObservationError(
                f"instruction_embedding must be {expected_language}, got {tuple(self.instruction_embedding.shape)}"
            )
        missing = [camera for camera in config.cameras if camera not in self.images]
        if missing:
            raise ObservationError(f"missing camera images {missing}")
        expected_image = (batch, 3, config.image_height, config.image_width)
        for camera in config.cameras:
            image = self.images[camera]
            if tuple(image.shape) != expected_image or image.dtype != torch.uint8:
                raise ObservationError(
                    f"camera {camera!r} must be uint8 {expected_image}, got {image.dtype} {tuple(image.shape)}"
                )


class VisionEncoder(nn.Module):
    """Small CNN shared across cameras, trained from scratch, read out by a spatial softmax.

    The spatial softmax turns each of ``vision_keypoints`` feature maps into the expected image
    coordinates of its activation: where things are, which is what manipulation needs and what
    global average pooling throws away. Each camera's keypoints get a learned projection; the
    projections are summed into one ``vision_dim`` vector.
    """

    def __init__(self, config: VLAConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels_in = 3
        for index, (channels, stride) in enumerate(zip(config.vision_channels, config.vision_strides, strict=True)):
            kernel = 5 if index == 0 else 3
            layers += [
                nn.Conv2d(channels_in, channels, kernel, stride=stride, padding=kernel // 2),
                nn.GroupNorm(config.vision_groups, channels),
                nn.SiLU(),
            ]
            channels_in = channels
        layers.append(nn.Conv2d(channels_in, config.vision_keypoints, 1))
        self.trunk = nn.Sequential(*layers)
        self.cameras = tuple(config.cameras)
        self.projections = nn.ModuleDict(
            {camera: nn.Linear(2 * config.vision_keypoints, config.vision_dim) for camera in self.cameras}
        )

    def forward(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{camera: uint8 [B, 3, h, w]}`` → ``[B, vision_dim]``."""
        stacked = torch.cat([images[camera] for camera in self.cameras], dim=0)
        pixels = stacked.float() / 127.5 - 1.0
        keypoints = spatial_softmax(self.trunk(pixels))
        per_camera = keypoints.chunk(len(self.cameras), dim=0)
        return sum(self.projections[camera](feat) for camera, feat in zip(self.cameras, per_camera, strict=True))


def spatial_softmax(maps: torch.Tensor) -> torch.Tensor:
    """``[B, K, h, w]`` feature maps → ``[B, 2K]`` expected (x, y) in [-1, 1] of each map's softmax."""
    batch, keypoints, height, width = maps.shape
    attention = torch.softmax(maps.reshape(batch, keypoints, height * width), dim=-1)
    ys = torch.linspace(-1.0, 1.0, height, device=maps.device, dtype=maps.dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=maps.device, dtype=maps.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    expected_x = attention @ grid_x.reshape(-1, 1)
    expected_y = attention @ grid_y.reshape(-1, 1)
    return torch.cat([expected_x, expected_y], dim=-1).reshape(batch, 2 * keypoints)


class ProprioEncoder(nn.Module):
    """Two-layer MLP over the normalized low-dimensional state (joint positions, then object positions)."""

    def __init__(self, config: VLAConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(config.state_dim, config.proprio_hidden),
            nn.SiLU(),
            nn.Linear(config.proprio_hidden, config.proprio_hidden),
        )

    def forward(self, proprio: torch.Tensor) -> torch.Tensor:
        """``[B, state_dim]`` → ``[B, proprio_hidden]``."""
        return self.net(proprio)


class _ResidualBlock(nn.Module):
    """Pre-norm residual MLP block."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(torch.nn.functional.silu(self.fc1(self.norm(h))))


class ActionExpert(nn.Module):
    """Flow-matching velocity field ``v(x [B,H,D], t [B], features [B,F]) -> [B,H,D]``.

    A residual MLP over the flattened chunk, a sinusoidal time embedding and the
    observation features. The learner deep-copies it for its base, fine-tuned
    and EMA flows, so it holds no reference to the encoders.
    """

    def __init__(self, config: VLAConfig) -> None:
        super().__init__()
        self.horizon = config.horizon
        self.action_dim = config.action_dim
        self.time_embedding_dim = config.time_embedding_dim
        chunk = config.horizon * config.action_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(config.time_embedding_dim, config.time_embedding_dim),
            nn.SiLU(),
        )
        self.input = nn.Linear(chunk + config.time_embedding_dim + config.feature_dim, config.expert_width)
        self.blocks = nn.ModuleList(_ResidualBlock(config.expert_width) for _ in range(config.expert_blocks))
        self.out_norm = nn.LayerNorm(config.expert_width)
        self.output = nn.Linear(config.expert_width, chunk)

    def forward(self, x: torch.Tensor, t: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Velocity at ``x`` and flow time ``t`` given observation ``features``."""
        batch = x.shape[0]
        if t.dim() == 0:
            t = t.expand(batch)
        time = self.time_mlp(sinusoidal_embedding(t.reshape(batch), self.time_embedding_dim).to(x.dtype))
        h = self.input(torch.cat([x.reshape(batch, -1), time, features], dim=-1))
        for block in self.blocks:
            h = block(h)
        return self.output(torch.nn.functional.silu(self.out_norm(h))).reshape(batch, self.horizon, self.action_dim)


class FlowMatchingVLA(nn.Module):
    """Vision (CNN) + language (sentence embedding) + proprio → features; flow-matching action expert → chunk."""

    def __init__(self, config: VLAConfig | None = None) -> None:
        super().__init__()
        self.config = config or VLAConfig()
        c = self.config
        self.vision = VisionEncoder(c)
        self.language = nn.Sequential(nn.Linear(c.language_dim, c.language_proj_dim), nn.SiLU())
        self.proprio = ProprioEncoder(c)
        self.fusion = nn.Sequential(
            nn.Linear(c.vision_dim + c.language_proj_dim + c.proprio_hidden, c.feature_dim),
            nn.SiLU(),
            nn.Linear(c.feature_dim, c.feature_dim),
            nn.LayerNorm(c.feature_dim),
        )
        self.action_expert = ActionExpert(c)

    @property
    def feature_dim(self) -> int:
        """F, the width of ``encode``'s output."""
        return self.config.feature_dim

    def encode(self, batch: ObservationBatch) -> torch.Tensor:
        """Observation → features ``[B, F]``."""
        batch.validate(self.config)
        parts = [
            self.vision(batch.images),
            self.language(batch.instruction_embedding.float()),
            self.proprio(batch.proprio.float()),
        ]
        return self.fusion(torch.cat(parts, dim=-1))

    def velocity(self, x: torch.Tensor, t: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The flow's velocity field: ``action_expert(x, t, features)``."""
        return self.action_expert(x, t, features)

    def sample(
        self,
        features: torch.Tensor,
        noise: torch.Tensor | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Normalized action chunks ``[B, H, D]``: K Euler steps from ``noise`` (default N(0, I) via ``generator``)."""
        shape = (features.shape[0], self.config.horizon, self.config.action_dim)
        if noise is None:
            noise = torch.randn(shape, generator=generator, dtype=features.dtype, device=features.device)
        elif tuple(noise.shape) != shape:
            raise ValueError(f"noise must be {shape}, got {tuple(noise.shape)}")
        return euler_sample(self.velocity, features, noise, steps or self.config.flow_steps)

    def forward(self, batch: ObservationBatch, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``sample(encode(batch), noise)``: normalized action chunks for a batch of observations."""
        return self.sample(self.encode(batch), noise)

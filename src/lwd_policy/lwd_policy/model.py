"""The built-in flow-matching vision-language-action model, registered as policy type ``FlowMatchingVLA``.

``encode`` turns an observation (camera images, instruction embedding, normalized
proprio) into one feature vector; the ``ActionExpert`` is a flow-matching head that
maps (x_t, t, features) to a velocity over an H×D action chunk; ``sample`` (from
``PolicyModel``) runs K Euler steps from Gaussian noise. The rest of the stack only
relies on the ``PolicyModel`` contract (``lwd_policy.contract``, docs/contracts.md "Policy model").
"""

from __future__ import annotations

import torch
from torch import nn

from lwd_policy.config import VLAConfig
from lwd_policy.contract import ObservationBatch, PolicyModel, register_policy
from lwd_policy.flow import sinusoidal_embedding

__all__ = [
    "ActionExpert",
    "FlowMatchingVLA",
    "ObjectHead",
    "ProprioEncoder",
    "VisionEncoder",
]


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

    def keypoints(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{camera: uint8 [B, 3, h, w]}`` → every camera's keypoints side by side, ``[B, cameras × 2K]``."""
        stacked = torch.cat([images[camera] for camera in self.cameras], dim=0)
        pixels = stacked.float() / 127.5 - 1.0
        return torch.cat(spatial_softmax(self.trunk(pixels)).chunk(len(self.cameras), dim=0), dim=-1)

    def project(self, keypoints: torch.Tensor) -> torch.Tensor:
        """``keypoints`` → ``[B, vision_dim]``: each camera's keypoints projected, summed over cameras."""
        per_camera = keypoints.chunk(len(self.cameras), dim=-1)
        return sum(self.projections[camera](feat) for camera, feat in zip(self.cameras, per_camera, strict=True))

    def forward(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{camera: uint8 [B, 3, h, w]}`` → ``[B, vision_dim]``."""
        return self.project(self.keypoints(images))


POSITION_UNIT_M = 0.1
"""The object head predicts positions in tenths of a metre, so the features it adds are of order one."""


class ObjectHead(nn.Module):
    """Task objects' positions ``[B, N, 3]`` (in ``POSITION_UNIT_M``) from the vision keypoints of every camera."""

    def __init__(self, config: VLAConfig) -> None:
        super().__init__()
        self.objects = config.perceived_objects
        self.net = nn.Sequential(
            nn.Linear(2 * config.vision_keypoints * len(config.cameras), config.proprio_hidden),
            nn.SiLU(),
            nn.Linear(config.proprio_hidden, 3 * config.perceived_objects),
        )

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        return self.net(keypoints).reshape(keypoints.shape[0], self.objects, 3)


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


@register_policy("FlowMatchingVLA", VLAConfig)
class FlowMatchingVLA(PolicyModel):
    """Vision (CNN) + language (sentence embedding) + proprio → features; flow-matching action expert → chunk."""

    config: VLAConfig

    def __init__(self, config: VLAConfig | None = None) -> None:
        super().__init__(config or VLAConfig())
        c = self.config
        self.vision = VisionEncoder(c)
        self.language = nn.Sequential(nn.Linear(c.language_dim, c.language_proj_dim), nn.SiLU())
        self.proprio = ProprioEncoder(c)
        self.objects = ObjectHead(c) if c.perceived_objects else None
        self.fusion = nn.Sequential(
            nn.Linear(c.vision_dim + c.language_proj_dim + c.proprio_hidden + 3 * c.perceived_objects, c.feature_dim),
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
        return self.encode_for_training(batch)[0]

    def perceive(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        """The vision keypoints of every camera ``[B, cameras × 2K]``, what the fusion and the object head read."""
        return self.vision.keypoints(images)

    def keypoint_loss(self, perception: torch.Tensor, object_pixels: torch.Tensor) -> torch.Tensor | None:
        """Mean squared distance (in image coordinates, edges at ±1) from each camera's keypoint k to where object
        k appears, for the first ``perceived_objects`` objects: those keypoints learn to follow the objects the head
        locates. None without an object head."""
        if self.objects is None:
            return None
        count = self.objects.objects
        per_camera = perception.reshape(perception.shape[0], len(self.config.cameras), -1, 2)[:, :, :count]
        return _masked_mse(per_camera, _first_objects(object_pixels, count))

    def encode_for_training(
        self,
        batch: ObservationBatch,
        object_positions: torch.Tensor | None = None,
        perception: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features, and with ``perceived_objects`` and labels, the object head's mean squared error (in
        ``POSITION_UNIT_M``; ``PretrainConfig.auxiliary_weight`` scales it against the flow loss).

        The head's predictions enter the fusion detached: the auxiliary loss alone teaches the head, while
        the action loss still shapes the vision trunk through the keypoints' projection.
        """
        batch.validate(self.config, images=perception is None)
        keypoints = self.perceive(batch.images) if perception is None else perception
        parts = [
            self.vision.project(keypoints),
            self.language(batch.instruction_embedding.float()),
            self.proprio(batch.proprio.float()),
        ]
        auxiliary = None
        if self.objects is not None:
            predicted = self.objects(keypoints)
            parts.append(predicted.detach().flatten(1))
            if object_positions is not None:
                target = _first_objects(object_positions, self.objects.objects) / POSITION_UNIT_M
                auxiliary = _masked_mse(predicted, target)
        return self.fusion(torch.cat(parts, dim=-1)), auxiliary


def _first_objects(positions: torch.Tensor, count: int) -> torch.Tensor:
    """``positions [..., M, D]`` (objects on the second-last axis) → the first ``count`` objects ``[..., count, D]``,
    NaN for objects beyond M."""
    known = positions[..., :count, :].float()
    missing = count - known.shape[-2]
    return torch.nn.functional.pad(known, (0, 0, 0, missing), value=float("nan")) if missing else known


def _masked_mse(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries whose target is known (not NaN); 0 when none is."""
    known = torch.isfinite(target)
    if not bool(known.any()):
        return predicted.sum() * 0.0
    return ((predicted - torch.nan_to_num(target)) ** 2)[known].mean()

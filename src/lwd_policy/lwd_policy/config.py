"""The built-in VLA's configuration: what it sees, what it outputs, and how wide it is.

A ``VLAConfig`` travels with every ``FlowMatchingVLA`` checkpoint as ``config.json``, so a loader can
rebuild the exact architecture and refuse weights that do not fit. The I/O fields every policy type
shares come from ``lwd_policy.contract.PolicyConfig``; this class adds the network's widths. Defaults
are sized for real-time chunk inference on one CPU thread (see docs/method.md, "The policy").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from lwd_policy.contract import ConfigError, PolicyConfig

MAX_VISION_LAYERS = 8


@dataclass(frozen=True)
class VLAConfig(PolicyConfig):
    """Architecture of ``FlowMatchingVLA``: the shared I/O fields (``PolicyConfig``) plus widths.

    Width fields only size the network: the vision CNN (``vision_channels`` with ``vision_strides``,
    ``vision_groups`` GroupNorm groups, ``vision_keypoints`` spatial-softmax maps → ``vision_dim``), the
    language and proprio projections, the fused ``feature_dim`` and the action expert's residual MLP.
    ``LIMITS`` caps each width, far above the defaults: a config read from a checkpoint cannot claim
    more, and its implied tensor shapes must then equal the weight file's own (``lwd_policy.checkpoint``),
    so what loading allocates is bounded by the file. ``vision_channels`` has at most
    ``MAX_VISION_LAYERS`` layers of at most 1024 channels.

    ``perceived_objects`` > 0 gives the vision encoder a head that predicts that many task objects'
    positions from its keypoints, and the predictions join the fused features: the policy reads where
    things are from pixels alone. The head learns from the positions recorded in demonstration bags,
    used as training labels only (``FlowMatchingVLA.encode_for_training``); unlike ``object_slots``, no
    robot ever feeds positions to it.
    """

    LIMITS: ClassVar[Mapping[str, int]] = MappingProxyType(
        {
            **PolicyConfig.LIMITS,
            "vision_channels": 1024,
            "vision_keypoints": 1024,
            "vision_groups": 1024,
            "vision_dim": 4096,
            "language_proj_dim": 4096,
            "proprio_hidden": 4096,
            "feature_dim": 4096,
            "time_embedding_dim": 4096,
            "expert_width": 4096,
            "expert_blocks": 32,
            "perceived_objects": 256,
        }
    )

    vision_channels: tuple[int, ...] = (32, 64, 64, 64)
    vision_strides: tuple[int, ...] = ()
    vision_keypoints: int = 32
    vision_groups: int = 8
    vision_dim: int = 128
    language_proj_dim: int = 128
    proprio_hidden: int = 64
    feature_dim: int = 256
    time_embedding_dim: int = 64
    expert_width: int = 512
    expert_blocks: int = 3
    perceived_objects: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "vision_channels", tuple(int(c) for c in self.vision_channels))
        # Default strides: halve the resolution twice, then keep it, so the spatial softmax sees a fine grid.
        strides = self.vision_strides or tuple(2 if index < 2 else 1 for index in range(len(self.vision_channels)))
        object.__setattr__(self, "vision_strides", tuple(int(s) for s in strides))
        super().__post_init__()

    def validate(self) -> None:
        """Raise ConfigError naming the first field that is out of range."""
        super().validate()
        self.require_positive(
            "vision_dim",
            "language_proj_dim",
            "proprio_hidden",
            "feature_dim",
            "time_embedding_dim",
            "expert_width",
            "expert_blocks",
            "vision_groups",
            "vision_keypoints",
        )
        if not isinstance(self.perceived_objects, int) or self.perceived_objects < 0:
            raise ConfigError(f"perceived_objects must be a non-negative integer, got {self.perceived_objects!r}")
        if not self.vision_channels or any(c <= 0 for c in self.vision_channels):
            raise ConfigError(f"vision_channels must be positive, got {self.vision_channels}")
        if len(self.vision_channels) > MAX_VISION_LAYERS:
            raise ConfigError(f"vision_channels has {len(self.vision_channels)} layers, limit is {MAX_VISION_LAYERS}")
        if len(self.vision_strides) != len(self.vision_channels) or any(s not in (1, 2) for s in self.vision_strides):
            raise ConfigError(f"vision_strides must give 1 or 2 for each vision layer, got {self.vision_strides}")
        if any(c % self.vision_groups for c in self.vision_channels):
            raise ConfigError(f"every vision channel count must divide by vision_groups={self.vision_groups}")
        if self.time_embedding_dim % 2:
            raise ConfigError(f"time_embedding_dim must be even, got {self.time_embedding_dim}")

"""The built-in VLA's configuration: what it sees, what it outputs, and how wide it is.

A ``VLAConfig`` travels with every checkpoint as ``config.json``, so a loader can
rebuild the exact architecture and refuse weights that do not fit. Defaults are
sized for real-time chunk inference on one CPU thread (see docs/method.md, "The policy").
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

CONFIG_FORMAT = 1


class ConfigError(ValueError):
    """A configuration is malformed, inconsistent, or incompatible with another one."""


@dataclass(frozen=True)
class VLAConfig:
    """Architecture and I/O shapes of ``FlowMatchingVLA``.

    I/O fields (cameras, image size, dims, horizon, control period) define what a
    robot must feed and what it receives; width fields only size the network.
    ``object_slots`` > 0 makes the policy also read the positions of that many task objects from a
    perception system (``lwd_policy.proprio``); ``language_model`` is a sentence-transformers folder
    ("" = the bundled MiniLM);
    ``extra`` holds free-form JSON settings that travel with the checkpoint (for
    example a plugged-in VLA wrapper's options).
    """

    cameras: tuple[str, ...] = ("top",)
    image_height: int = 96
    image_width: int = 128
    proprio_dim: int = 14
    object_slots: int = 0
    action_dim: int = 14
    horizon: int = 20
    flow_steps: int = 10
    control_period: float = 0.02
    language_dim: int = 384
    language_model: str = ""
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
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(self.cameras))
        object.__setattr__(self, "vision_channels", tuple(int(c) for c in self.vision_channels))
        # Default strides: halve the resolution twice, then keep it, so the spatial softmax sees a fine grid.
        strides = self.vision_strides or tuple(2 if index < 2 else 1 for index in range(len(self.vision_channels)))
        object.__setattr__(self, "vision_strides", tuple(int(s) for s in strides))
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first field that is out of range."""
        if not self.cameras:
            raise ConfigError("cameras must name at least one camera")
        if len(set(self.cameras)) != len(self.cameras):
            raise ConfigError(f"cameras must be unique, got {self.cameras}")
        for name in self.cameras:
            if not isinstance(name, str) or not name or "/" in name:
                raise ConfigError(f"invalid camera name {name!r}")
        positive = (
            "image_height",
            "image_width",
            "proprio_dim",
            "action_dim",
            "horizon",
            "flow_steps",
            "language_dim",
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
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.object_slots, int) or isinstance(self.object_slots, bool) or self.object_slots < 0:
            raise ConfigError(f"object_slots must be a non-negative integer, got {self.object_slots!r}")
        if not self.control_period > 0:
            raise ConfigError(f"control_period must be > 0 seconds, got {self.control_period!r}")
        if not self.vision_channels or any(c <= 0 for c in self.vision_channels):
            raise ConfigError(f"vision_channels must be positive, got {self.vision_channels}")
        if len(self.vision_strides) != len(self.vision_channels) or any(s not in (1, 2) for s in self.vision_strides):
            raise ConfigError(f"vision_strides must give 1 or 2 for each vision layer, got {self.vision_strides}")
        if any(c % self.vision_groups for c in self.vision_channels):
            raise ConfigError(f"every vision channel count must divide by vision_groups={self.vision_groups}")
        if self.time_embedding_dim % 2:
            raise ConfigError(f"time_embedding_dim must be even, got {self.time_embedding_dim}")

    @property
    def state_dim(self) -> int:
        """Length of the low-dimensional input: joint positions, then 3 coordinates per object slot."""
        return self.proprio_dim + 3 * self.object_slots

    @property
    def chunk_duration(self) -> float:
        """Seconds of robot time one action chunk covers."""
        return self.horizon * self.control_period

    def io_signature(self) -> dict[str, Any]:
        """The fields a robot's runtime depends on; two configs with equal signatures are interchangeable."""
        return {
            "cameras": list(self.cameras),
            "image_height": self.image_height,
            "image_width": self.image_width,
            "proprio_dim": self.proprio_dim,
            "object_slots": self.object_slots,
            "action_dim": self.action_dim,
            "horizon": self.horizon,
            "control_period": self.control_period,
            "language_dim": self.language_dim,
        }

    def check_compatible(self, other: VLAConfig) -> None:
        """Raise ConfigError listing every I/O field where ``other`` differs from this config."""
        mine, theirs = self.io_signature(), other.io_signature()
        differences = [
            f"{key}: expected {mine[key]!r}, got {theirs[key]!r}" for key in mine if mine[key] != theirs[key]
        ]
        if differences:
            raise ConfigError("incompatible policy config: " + "; ".join(differences))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict, with the format version."""
        body = dataclasses.asdict(self)
        body["cameras"] = list(self.cameras)
        body["vision_channels"] = list(self.vision_channels)
        body["vision_strides"] = list(self.vision_strides)
        body["format"] = CONFIG_FORMAT
        return body

    def to_json(self) -> str:
        """Canonical JSON text (sorted keys)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> VLAConfig:
        """Build from a dict; unknown or mistyped fields raise ConfigError."""
        if not isinstance(body, dict):
            raise ConfigError(f"config must be a JSON object, got {type(body).__name__}")
        body = dict(body)
        fmt = body.pop("format", CONFIG_FORMAT)
        if fmt != CONFIG_FORMAT:
            raise ConfigError(f"unsupported config format {fmt!r}, expected {CONFIG_FORMAT}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ConfigError(f"unknown config fields {unknown}")
        try:
            return cls(**body)
        except (TypeError, ValueError) as error:
            if isinstance(error, ConfigError):
                raise
            raise ConfigError(f"invalid config: {error}") from error

    @classmethod
    def from_json(cls, text: str | bytes) -> VLAConfig:
        """Parse ``to_json`` output."""
        try:
            body = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"config is not valid JSON: {error}") from error
        return cls.from_dict(body)

    def replace(self, **changes: Any) -> VLAConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

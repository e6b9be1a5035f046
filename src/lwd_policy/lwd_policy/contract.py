"""The policy contract: what the LWD stack needs from a policy model, and the registry of policy types.

Checkpoints, the inference runtime and the learner (feature cache, BC pretraining, trainer and agent)
use a policy only through what this module defines, so another VLA (for example a LeRobot or openpi
model behind a wrapper) plugs in as one module: a ``PolicyConfig`` subclass with its own settings, a
``PolicyModel`` subclass, and ``@register_policy(name, config_class)`` on the model class. As in
LeRobot's policy registry (``config.type`` → config and policy classes), the type name is recorded in
every checkpoint and loading builds the model through the registry (``lwd_policy.checkpoint``).

- ``PolicyConfig``: the I/O fields every policy shares (what a robot feeds and receives, how a chunk
  is sampled) with validation and a JSON round trip; a type adds its width fields in a subclass.
  Every size field has a stated maximum (``LIMITS``), so a config read from a checkpoint cannot ask
  for an arbitrary amount of memory before its weights are compared with it.
- ``ObservationBatch``: B observations as model inputs.
- ``PolicyModel``: an ``nn.Module`` that encodes an observation into features and acts through a
  flow-matching ``action_expert``, which the learner fine-tunes on cached features and publishes.
- The registry: ``register_policy``, ``lookup_policy_type``, ``policy_type_of``, ``build_policy``,
  ``known_policy_types``. The built-in ``FlowMatchingVLA`` (``lwd_policy.model``) is always known.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from lwd_policy.flow import euler_sample

CONFIG_FORMAT = 1
BUILTIN_POLICY_MODULES = ("lwd_policy.model",)
"""Modules that register the built-in policy types; imported before any registry lookup."""

C = TypeVar("C", bound="PolicyConfig")
M = TypeVar("M", bound="PolicyModel")


class ConfigError(ValueError):
    """A configuration is malformed, inconsistent, or incompatible with another one."""


class ObservationError(ValueError):
    """An observation batch does not match the model's configuration."""


class PolicyTypeError(ValueError):
    """A policy type is unknown, registered twice, or its classes do not follow the contract."""


@dataclass(frozen=True)
class PolicyConfig:
    """The I/O shapes every policy type shares; a type's config subclasses it with its own fields.

    ``cameras`` / ``image_height`` / ``image_width``: the RGB images the policy reads; ``proprio_dim``: joint
    positions; ``object_slots`` > 0 makes the policy also read the positions of that many task objects from
    a perception system (``lwd_policy.proprio``); ``action_dim`` × ``horizon``: one action chunk, sampled in
    ``flow_steps`` Euler steps; ``control_period``: seconds per chunk step; ``language_dim``: the instruction
    embedding's width, from the sentence-transformers folder ``language_model`` ("" = the bundled MiniLM);
    ``extra``: free-form JSON settings that travel with the checkpoint. Every field but ``flow_steps``,
    ``language_model`` and ``extra`` is in ``io_signature``: checkpoints that differ there cannot replace
    each other on a robot.

    ``LIMITS`` states the largest value each size field may take (for a tuple field, each entry); a
    subclass extends it with its own width fields.
    """

    LIMITS: ClassVar[Mapping[str, int]] = MappingProxyType(
        {
            "cameras": 16,
            "image_height": 4096,
            "image_width": 4096,
            "proprio_dim": 1024,
            "object_slots": 256,
            "action_dim": 1024,
            "horizon": 1000,
            "flow_steps": 1000,
            "language_dim": 8192,
        }
    )

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
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(self.cameras))
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first field that is out of range (subclasses extend it)."""
        if not self.cameras:
            raise ConfigError("cameras must name at least one camera")
        if len(set(self.cameras)) != len(self.cameras):
            raise ConfigError(f"cameras must be unique, got {self.cameras}")
        for name in self.cameras:
            if not isinstance(name, str) or not name or "/" in name:
                raise ConfigError(f"invalid camera name {name!r}")
        self.require_positive(
            "image_height", "image_width", "proprio_dim", "action_dim", "horizon", "flow_steps", "language_dim"
        )
        if not isinstance(self.object_slots, int) or isinstance(self.object_slots, bool) or self.object_slots < 0:
            raise ConfigError(f"object_slots must be a non-negative integer, got {self.object_slots!r}")
        if not self.control_period > 0:
            raise ConfigError(f"control_period must be > 0 seconds, got {self.control_period!r}")
        self.check_limits()

    def check_limits(self) -> None:
        """Raise ConfigError naming the first field above its ``LIMITS`` entry (for ``cameras``: their count)."""
        for name, limit in self.LIMITS.items():
            value = getattr(self, name)
            if name == "cameras":
                values = (len(value),)
            else:
                values = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, int) and v > limit for v in values):
                raise ConfigError(f"{name} is {value!r}, above its limit of {limit}")

    def require_positive(self, *names: str) -> None:
        """Raise ConfigError naming the first of ``names`` that is not a positive integer."""
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")

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

    def check_compatible(self, other: PolicyConfig) -> None:
        """Raise ConfigError listing every I/O field where ``other`` differs from this config."""
        mine, theirs = self.io_signature(), other.io_signature()
        differences = [
            f"{key}: expected {mine[key]!r}, got {theirs[key]!r}" for key in mine if mine[key] != theirs[key]
        ]
        if differences:
            raise ConfigError("incompatible policy config: " + "; ".join(differences))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples as lists), with the format version."""
        fields = dataclasses.asdict(self)
        body = {name: list(value) if isinstance(value, tuple) else value for name, value in fields.items()}
        body["format"] = CONFIG_FORMAT
        return body

    def to_json(self) -> str:
        """Canonical JSON text (sorted keys)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls: type[C], body: dict[str, Any]) -> C:
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
    def from_json(cls: type[C], text: str | bytes) -> C:
        """Parse ``to_json`` output."""
        try:
            body = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"config is not valid JSON: {error}") from error
        return cls.from_dict(body)

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


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

    def validate(self, config: PolicyConfig, images: bool = True) -> None:
        """Raise ObservationError naming the first tensor whose shape or dtype is wrong; ``images=False`` for a
        batch whose images a model does not read (their ``perceive`` output was computed in advance)."""
        batch = self.batch_size
        expected_proprio = (batch, config.state_dim)
        if tuple(self.proprio.shape) != expected_proprio:
            raise ObservationError(f"proprio must be {expected_proprio}, got {tuple(self.proprio.shape)}")
        expected_language = (batch, config.language_dim)
        if tuple(self.instruction_embedding.shape) != expected_language:
            raise ObservationError(
                f"instruction_embedding must be {expected_language}, got {tuple(self.instruction_embedding.shape)}"
            )
        if not images:
            return
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


class PolicyModel(nn.Module, abc.ABC):
    """A flow-matching policy as the stack sees it: observation → features ``[B, F]`` → action chunk ``[B, H, D]``.

    A subclass is built as ``model_class(config)`` from its registered config class (checkpoints save and
    load its ``state_dict`` with safetensors, so every weight must be a tensor in it) and provides:

    - ``config``: its ``PolicyConfig`` (set by ``PolicyModel.__init__``); H = ``config.horizon``,
      D = ``config.action_dim``.
    - ``feature_dim``: F, the width of ``encode``'s output.
    - ``encode(batch)``: ``ObservationBatch`` → features ``[B, F]``. Online the learner runs it once per
      recorded frame with the weights frozen (the feature cache); BC pretraining trains it through
      ``encode_for_training``, which may add an auxiliary loss (default: none).
    - ``action_expert``: an ``nn.Module`` submodule, the velocity field
      ``forward(x [B, H, D], t [B], features [B, F]) -> v [B, H, D]`` of the flow
      x_t = (1 − t)·noise + t·action (``lwd_policy.flow``). It must hold no reference to the encoder: the
      learner deep-copies it, fine-tunes the copy and publishes it back into the policy's weights.

    ``sample`` and ``forward`` are provided: sampling is ``config.flow_steps`` Euler steps of
    ``action_expert``, exactly how the learner samples the flow it fine-tunes, so a subclass keeps them.
    """

    config: PolicyConfig
    action_expert: nn.Module

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = config

    @property
    @abc.abstractmethod
    def feature_dim(self) -> int:
        """F, the width of ``encode``'s output."""

    @abc.abstractmethod
    def encode(self, batch: ObservationBatch) -> torch.Tensor:
        """Observation → features ``[B, F]``."""

    def encode_for_training(
        self,
        batch: ObservationBatch,
        object_positions: torch.Tensor | None = None,
        perception: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``encode`` for BC pretraining, with the model's auxiliary loss, if it has one (else None).

        ``object_positions`` ``[B, N, 3]`` (metres, NaN where unknown) are the task objects' recorded
        positions: labels a model may learn to perceive, never inputs. ``perception``: ``perceive(batch.images)``
        computed earlier, which a model that has ``perceive`` uses instead of running it again; then ``batch`` may
        come without images.
        """
        return self.encode(batch), None

    def keypoint_loss(self, perception: torch.Tensor, object_pixels: torch.Tensor) -> torch.Tensor | None:
        """How far the image keypoints in ``perception`` (``perceive``'s output) are from where the task objects
        appear in each camera, ``object_pixels`` ``[B, cameras, N, 2]`` (``lwd_interfaces.camera_projection``,
        NaN where unknown): a label for the perception steps of BC pretraining. None (the default) for a model
        whose perception has no image keypoints."""
        return None

    def perceive(self, images: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """What the model computes from the images alone, ``[B, P]``, or None (the default) for a model that does
        not separate it. With those weights frozen it is a fixed function of a frame, so BC pretraining computes it
        once per frame instead of on every step (``PretrainConfig.perception_steps``)."""
        return None

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
        return euler_sample(self.action_expert, features, noise, steps or self.config.flow_steps)

    def forward(self, batch: ObservationBatch, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``sample(encode(batch), noise)``: normalized action chunks for a batch of observations."""
        return self.sample(self.encode(batch), noise)


@dataclass(frozen=True)
class PolicyType:
    """A registered policy type: the name checkpoints record, its config class and its model class."""

    name: str
    config_class: type[PolicyConfig]
    model_class: type[PolicyModel]

    def build(self, config: PolicyConfig) -> PolicyModel:
        """A freshly initialised model of this type (its weights come from torch's global RNG)."""
        if type(config) is not self.config_class:
            raise PolicyTypeError(
                f"policy type {self.name!r} is configured by {self.config_class.__name__}, got {type(config).__name__}"
            )
        model = self.model_class(config)
        if not isinstance(getattr(model, "action_expert", None), nn.Module):
            raise PolicyTypeError(f"policy type {self.name!r}: {self.model_class.__name__} has no action_expert module")
        return model


_REGISTRY: dict[str, PolicyType] = {}


def register_policy(name: str, config_class: type[PolicyConfig]) -> Callable[[type[M]], type[M]]:
    """Class decorator: register the decorated ``PolicyModel`` subclass as policy type ``name``.

    ``name`` is what checkpoints record; a name, config class or model class belongs to one type only.
    """

    def register(model_class: type[M]) -> type[M]:
        if not isinstance(name, str) or not name:
            raise PolicyTypeError(f"a policy type name must be a non-empty string, got {name!r}")
        if not (isinstance(model_class, type) and issubclass(model_class, PolicyModel)):
            raise PolicyTypeError(f"policy type {name!r}: {model_class!r} is not a PolicyModel subclass")
        if not (isinstance(config_class, type) and issubclass(config_class, PolicyConfig)):
            raise PolicyTypeError(f"policy type {name!r}: {config_class!r} is not a PolicyConfig subclass")
        entry = PolicyType(name, config_class, model_class)
        for other in _REGISTRY.values():
            if other == entry:
                return model_class
            if other.name == name or other.config_class is config_class or other.model_class is model_class:
                raise PolicyTypeError(
                    f"cannot register {model_class.__qualname__} ({config_class.__qualname__}) as policy type "
                    f"{name!r}: type {other.name!r} already uses that name or a class of it"
                )
        _REGISTRY[name] = entry
        return model_class

    return register


def _registry() -> dict[str, PolicyType]:
    for module in BUILTIN_POLICY_MODULES:
        importlib.import_module(module)
    return _REGISTRY


def known_policy_types() -> list[str]:
    """Names of every registered policy type, sorted (the built-in ones included)."""
    return sorted(_registry())


def lookup_policy_type(name: str) -> PolicyType:
    """The policy type registered as ``name``; PolicyTypeError listing the known types if there is none."""
    registry = _registry()
    if name not in registry:
        raise PolicyTypeError(f"unknown policy type {name!r}; known types: {sorted(registry)}")
    return registry[name]


def policy_type_of(instance: PolicyConfig | PolicyModel) -> PolicyType:
    """The registered type whose config or model class is exactly ``type(instance)``."""
    registry = _registry()
    cls = type(instance)
    for entry in registry.values():
        if cls is entry.config_class or cls is entry.model_class:
            return entry
    raise PolicyTypeError(
        f"{cls.__qualname__} is not the config or model class of a registered policy type; "
        f"known types: {sorted(registry)}"
    )


def build_policy(config: PolicyConfig) -> PolicyModel:
    """A freshly initialised model of the type ``config`` configures (draws from torch's global RNG)."""
    return policy_type_of(config).build(config)

"""`AgentConfig`: every hyperparameter of the DIVL + QAM agent and its baselines, with a JSON round trip."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

VALUE_KINDS = ("divl", "expectile")
ACTOR_KINDS = ("qam", "bc")
BASE_DATA_KINDS = ("operator", "all")


class AgentConfigError(ValueError):
    """An AgentConfig field has an invalid value, or a config JSON has unknown or malformed fields."""


@dataclass
class AgentConfig:
    """Hyperparameters of `LWDAgent` (docs/method.md).

    Shapes: features [B, feature_dim]; actions [B, horizon, action_dim] in the policy's normalized space.
    `gamma` is the per-control-step discount; a chunk transition of `n_step` chunks discounts by
    gamma^(n_step·horizon), which the dataset side puts in `TransitionBatch.discount`.
    `action_clip` bounds the actions at which QAM queries ∇_a Q (normalized space): 3.0 suits lwd_policy's
    default mean/std normalization (±3 std); use 1.0 with min/max normalization, as in the QAM paper.
    `lam` is λ in π* ∝ π_β·exp(Q/λ): smaller λ pulls the fine-tuned flow harder toward high Q. With the sparse
    0/1 reward Q lies in [0, 1], so λ = 1 tilts by at most a factor e; the default 0.1 is the better of the two
    measured in BENCHMARKS.md.
    `base_data` picks the actions the base flow π_β (and the BC actor, HG-DAgger) clones: "operator"
    (demonstrations, and intervention chunks from the takeover to the hand-back; the default) or "all" (every
    executed step, the policy's own too). The critic and value always learn from every transition. Cloning
    the policy's own autonomous actions, failures included, drags the prior toward them: BENCHMARKS.md,
    "what the data mix does to LWD".
    `actor_lr` is the step size of the published flow f_θ (QAM's actor, or the BC actor of HG-DAgger; None: `lr`),
    `lr` that of every other module.
    """

    feature_dim: int
    horizon: int = 20
    action_dim: int = 14
    gamma: float = 0.99
    n_step: int = 1
    value: str = "divl"
    actor: str = "qam"
    base_data: str = "operator"
    num_atoms: int = 201
    v_min: float = -0.1
    v_max: float = 1.1
    tau_base: float = 0.9
    tau_alpha: float = 0.5
    tau_min: float = 0.5
    tau_max: float = 0.95
    expectile: float = 0.7
    hidden_dim: int = 256
    num_layers: int = 2
    lam: float = 0.1
    flow_steps: int = 10
    action_clip: float = 3.0
    lr: float = 3e-4
    actor_lr: float | None = None
    grad_clip: float = 1.0
    ema: float = 0.005
    base_ema: float = 0.005
    seed: int = 0

    def __post_init__(self) -> None:
        if self.value not in VALUE_KINDS:
            raise AgentConfigError(f"value must be one of {VALUE_KINDS}, got {self.value!r}")
        if self.actor not in ACTOR_KINDS:
            raise AgentConfigError(f"actor must be one of {ACTOR_KINDS}, got {self.actor!r}")
        if self.base_data not in BASE_DATA_KINDS:
            raise AgentConfigError(f"base_data must be one of {BASE_DATA_KINDS}, got {self.base_data!r}")
        for name in ("feature_dim", "horizon", "action_dim", "n_step", "hidden_dim", "num_layers"):
            if getattr(self, name) < 1:
                raise AgentConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.flow_steps < 2:
            raise AgentConfigError(f"flow_steps must be at least 2, got {self.flow_steps}")
        if self.num_atoms < 2 or not self.v_max > self.v_min:
            raise AgentConfigError(
                f"need num_atoms >= 2 and v_max > v_min, got {self.num_atoms} atoms on [{self.v_min}, {self.v_max}]"
            )
        if self.actor_lr is not None and not self.actor_lr > 0.0:
            raise AgentConfigError(f"actor_lr must be positive (or null: lr), got {self.actor_lr}")
        if not 0.0 < self.gamma <= 1.0:
            raise AgentConfigError(f"gamma must be in (0, 1], got {self.gamma}")
        if not 0.0 < self.tau_min <= self.tau_max <= 1.0:
            raise AgentConfigError(f"need 0 < tau_min <= tau_max <= 1, got {self.tau_min}, {self.tau_max}")
        for name in ("ema", "base_ema", "expectile"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise AgentConfigError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        for name in ("lam", "lr", "grad_clip", "action_clip"):
            if not getattr(self, name) > 0.0:
                raise AgentConfigError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def chunk_discount(self) -> float:
        """γ^(n·H): the bootstrap discount of a non-terminal transition of n chunks of H steps."""
        return self.gamma ** (self.n_step * self.horizon)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AgentConfigError(f"unknown AgentConfig fields: {unknown}")
        try:
            return cls(**data)
        except TypeError as error:
            raise AgentConfigError(f"malformed AgentConfig: {error}") from error

    @classmethod
    def from_json(cls, text: str) -> AgentConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise AgentConfigError(f"AgentConfig JSON does not parse: {error}") from error
        if not isinstance(data, dict):
            raise AgentConfigError(f"AgentConfig JSON must be an object, got {type(data).__name__}")
        return cls.from_dict(data)

"""The last gate before a command reaches the robot: finite check, joint-limit clamp, rate limit.

Every command the runtime emits passes through ``SafetyFilter.apply``. A
non-finite proposal is never partially used: the whole step holds the previous
command. Limits are in robot units (rad for arm joints, normalized 0..1 for
ALOHA grippers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lwd_interfaces.robot import RobotDescription
from lwd_interfaces.robots import ALOHA


class SafetyConfigError(ValueError):
    """Joint limits or rate limits are malformed."""


@dataclass(frozen=True)
class SafetyLimits:
    """Per-joint position bounds and the largest change allowed between consecutive commands."""

    lower: np.ndarray
    upper: np.ndarray
    max_delta: np.ndarray

    def __post_init__(self) -> None:
        lower = np.asarray(self.lower, dtype=np.float64).reshape(-1)
        upper = np.asarray(self.upper, dtype=np.float64).reshape(-1)
        max_delta = np.asarray(self.max_delta, dtype=np.float64).reshape(-1)
        if max_delta.size == 1:
            max_delta = np.full(lower.shape, float(max_delta[0]))
        if not (lower.shape == upper.shape == max_delta.shape) or lower.size == 0:
            raise SafetyConfigError(
                f"lower ({lower.size}), upper ({upper.size}) and max_delta ({max_delta.size}) must have the same length"
            )
        if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper)) and np.all(np.isfinite(max_delta))):
            raise SafetyConfigError("limits must be finite")
        if np.any(lower > upper):
            raise SafetyConfigError(f"lower limit above upper limit at joints {np.flatnonzero(lower > upper).tolist()}")
        if np.any(max_delta <= 0):
            raise SafetyConfigError("max_delta must be > 0 for every joint")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "max_delta", max_delta)

    @property
    def dim(self) -> int:
        """Number of joints."""
        return int(self.lower.size)


def robot_limits(
    robot: RobotDescription = ALOHA, arm_max_delta: float = 0.05, gripper_max_delta: float = 0.1
) -> SafetyLimits:
    """The joint limits of ``robot`` with per-step deltas (the defaults are 2.5 rad/s at 50 Hz for arm joints)."""
    return SafetyLimits(
        lower=np.array(robot.lower),
        upper=np.array(robot.upper),
        max_delta=robot.per_joint(arm_max_delta, gripper_max_delta),
    )


@dataclass(frozen=True)
class SafetyOutcome:
    """A filtered command and what the filter had to do to it."""

    command: np.ndarray
    nonfinite: bool
    clamped: bool
    rate_limited: bool


class SafetyFilter:
    """Clamp to joint limits, then limit the step from the previous command; hold on NaN/inf."""

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits

    def apply(self, proposed: np.ndarray, previous: np.ndarray) -> SafetyOutcome:
        """Filter ``proposed`` given the ``previous`` emitted command (both ``[dim]``, robot units).

        ``previous`` is itself clamped, so a hold can never leave the limits either.
        """
        limits = self.limits
        proposed = np.asarray(proposed, dtype=np.float64).reshape(-1)
        previous = np.asarray(previous, dtype=np.float64).reshape(-1)
        if proposed.size != limits.dim or previous.size != limits.dim:
            raise SafetyConfigError(
                f"command has {proposed.size} values and previous {previous.size}; limits cover {limits.dim} joints"
            )
        previous = np.clip(previous, limits.lower, limits.upper)
        if not np.all(np.isfinite(proposed)):
            return SafetyOutcome(command=previous, nonfinite=True, clamped=False, rate_limited=False)
        clamped = np.clip(proposed, limits.lower, limits.upper)
        limited = np.clip(clamped, previous - limits.max_delta, previous + limits.max_delta)
        return SafetyOutcome(
            command=limited,
            nonfinite=False,
            clamped=bool(np.any(clamped != proposed)),
            rate_limited=bool(np.any(limited != clamped)),
        )

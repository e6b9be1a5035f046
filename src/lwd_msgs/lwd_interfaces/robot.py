"""What the stack knows about a robot: its description, the driver interface, and one observation.

A ``RobotDescription`` is the one place a kind of robot's facts live (joints and their limits,
grippers, cameras, control rate); the safety layer, the simulator, the arbiter and the node
parameters read it (profiles in ``lwd_interfaces.robots``). A ``RobotDriver`` turns joint-position
commands into motion and reports what the robot measured; a real driver implements it without
importing the simulator, so the runner, the recorder and the ROS nodes never know which it is.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


class DriverError(ValueError):
    """A driver was configured or commanded with something it cannot accept."""


class ConfigError(DriverError):
    """Bad driver configuration: unknown task, unknown camera, invalid resolution..."""


class CommandError(DriverError):
    """A joint command that must not reach the robot (wrong shape, NaN or infinite values)."""


@dataclass(frozen=True)
class RobotDescription:
    """One kind of robot, as every layer of the stack needs to know it.

    ``joint_names`` give the order of every joint vector (commands, measured positions and
    velocities); ``lower``/``upper`` bound each entry [rad for arm joints, normalized 0 closed .. 1
    open for grippers]; ``grippers`` are the indices of gripper entries; ``cameras`` are the
    cameras a deployment of this robot records.
    """

    name: str
    joint_names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    grippers: tuple[int, ...]
    cameras: tuple[str, ...]
    control_rate_hz: float = 50.0

    def __post_init__(self) -> None:
        dof = len(self.joint_names)
        if dof == 0 or len(self.lower) != dof or len(self.upper) != dof:
            raise ValueError(
                f"{self.name}: {dof} joints but {len(self.lower)} lower and {len(self.upper)} upper limits"
            )
        if any(low > high for low, high in zip(self.lower, self.upper, strict=True)):
            raise ValueError(f"{self.name}: a lower joint limit is above its upper limit")
        if any(not 0 <= index < dof for index in self.grippers):
            raise ValueError(f"{self.name}: gripper indices {self.grippers} outside 0..{dof - 1}")

    @property
    def dof(self) -> int:
        """Length of the joint command and of the measured joint vectors."""
        return len(self.joint_names)

    def per_joint(self, arm: float, gripper: float) -> np.ndarray:
        """A per-joint vector holding ``gripper`` at the gripper entries and ``arm`` elsewhere."""
        values = np.full(self.dof, float(arm))
        values[list(self.grippers)] = gripper
        return values


@dataclass(frozen=True)
class Observation:
    """What the robot measured at one control step.

    ``stamp_ns`` is the step time (the header stamp of every message of the step), ``qpos`` and
    ``qvel`` are the measured joint vectors, ``images`` maps each configured camera to an
    ``uint8`` array of shape (H, W, 3), and ``object_poses`` holds the task objects' poses as
    perception reports them, ``[N, 7]`` rows of (x, y, z, qw, qx, qy, qz); N = 0 without perception.
    """

    stamp_ns: int
    qpos: np.ndarray
    qvel: np.ndarray
    images: Mapping[str, np.ndarray] = field(default_factory=dict)
    object_poses: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))


def validate_command(command: object, dof: int) -> np.ndarray:
    """Return ``command`` as a float64 ``(dof,)`` array, or raise CommandError saying what is wrong."""
    try:
        array = np.asarray(command, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise CommandError(f"joint command is not numeric: {error}") from error
    if array.shape != (dof,):
        raise CommandError(f"joint command must have shape ({dof},), got {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise CommandError(f"joint command has non-finite values at indices {bad.tolist()}: {array[bad].tolist()}")
    return array


class RobotDriver(abc.ABC):
    """A robot: joint states and images out, joint-position commands in."""

    @property
    @abc.abstractmethod
    def description(self) -> RobotDescription:
        """The kind of robot this driver moves (joint order, limits, grippers)."""

    @property
    def joint_names(self) -> list[str]:
        """Names of the entries of qpos / qvel / command, in order."""
        return list(self.description.joint_names)

    @property
    @abc.abstractmethod
    def cameras(self) -> list[str]:
        """Names of the cameras whose images every Observation carries."""

    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> Observation:
        """Start a new episode (a simulator re-randomizes the scene from ``seed``)."""

    @abc.abstractmethod
    def step(self, command: np.ndarray) -> Observation:
        """Send one joint-position command, advance one control period, and observe."""

"""The robot driver interface: what the runner needs from a robot, simulated or real.

A driver turns 14-D joint-position commands (gym-aloha order: left arm 6 [rad], left gripper
[0 closed .. 1 open], right arm 6, right gripper) into motion and reports what the robot
measured. A real ALOHA driver implements the same four members, so the runner, the recorder
and the ROS node never know whether the robot is simulated.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

ACTION_DIM = 14
"""Length of the joint command and of the measured joint vectors."""


class DriverError(ValueError):
    """A driver was configured or commanded with something it cannot accept."""


class ConfigError(DriverError):
    """Bad driver configuration: unknown task, unknown camera, invalid resolution..."""


class CommandError(DriverError):
    """A joint command that must not reach the robot (wrong shape, NaN or infinite values)."""


@dataclass(frozen=True)
class Observation:
    """What the robot measured at one control step.

    ``stamp_ns`` is the step time (the header stamp of every message of the step), ``qpos`` and
    ``qvel`` are the 14-D measured joint vectors, ``images`` maps each configured camera to an
    ``uint8`` array of shape (H, W, 3), and ``object_poses`` holds the task objects' poses as
    perception reports them, ``[N, 7]`` rows of (x, y, z, qw, qx, qy, qz); N = 0 without perception.
    """

    stamp_ns: int
    qpos: np.ndarray
    qvel: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)
    object_poses: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))


def validate_command(command: object) -> np.ndarray:
    """Return ``command`` as a float64 (14,) array, or raise CommandError saying what is wrong."""
    try:
        array = np.asarray(command, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise CommandError(f"joint command is not numeric: {error}") from error
    if array.shape != (ACTION_DIM,):
        raise CommandError(f"joint command must have shape ({ACTION_DIM},), got {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise CommandError(f"joint command has non-finite values at indices {bad.tolist()}: {array[bad].tolist()}")
    return array


class RobotDriver(abc.ABC):
    """A dual-arm robot: joint states and images out, joint-position commands in."""

    @property
    @abc.abstractmethod
    def joint_names(self) -> list[str]:
        """Names of the 14 entries of qpos / qvel / command, in order."""

    @property
    @abc.abstractmethod
    def cameras(self) -> list[str]:
        """Names of the cameras whose images every Observation carries."""

    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> Observation:
        """Start a new episode (a simulator re-randomizes the scene from ``seed``)."""

    @abc.abstractmethod
    def step(self, command: np.ndarray) -> Observation:
        """Send one 14-D joint-position command, advance one control period, and observe."""

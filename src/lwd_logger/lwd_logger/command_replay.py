"""Replay an episode's executed commands on a simulated robot and measure how far the trajectory drifts.

The measured ``/joint_states`` of step i+1 is what step i's executed command
led to; replay resets the driver with the given seed, applies each recorded
``/command/executed`` in order and compares the driver's joint positions to
the recorded next measurement. A large drift means the bag and the sim
disagree (different seed/objects, a real robot's dynamics, or a bad bag).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lwd_interfaces import topics

from lwd_logger.bag_reader import BagReader
from lwd_logger.errors import BagError
from lwd_logger.render import stamp_ns


@dataclass(frozen=True)
class ReplayReport:
    """Drift of a replayed trajectory against the recorded one (joint positions; rad, grippers normalized)."""

    task: str
    steps: int
    max_drift: float
    mean_drift: float
    final_drift: tuple[float, ...]


def recorded_trajectory(bag: str | Path) -> tuple[str, np.ndarray, np.ndarray]:
    """(task, executed commands [N,14], next measured positions [N,14]) aligned on the header stamps."""
    reader = BagReader(bag)
    measured = {stamp_ns(m.msg): np.asarray(m.msg.position, float) for m in reader.messages([topics.JOINT_STATES])}
    executed = [
        (stamp_ns(m.msg), np.asarray(m.msg.position, float)) for m in reader.messages([topics.EXECUTED_COMMAND])
    ]
    stamps = sorted(measured)
    following = dict(itertools.pairwise(stamps))
    pairs = [(command, measured[following[stamp]]) for stamp, command in executed if stamp in following]
    if not pairs:
        raise BagError(f"{bag}: no executed command is followed by a joint-state measurement; nothing to replay")
    task = reader.info.custom_data.get("lwd.task", "")
    return task, np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def replay(driver: Any, commands: np.ndarray, expected: np.ndarray, seed: int, task: str = "") -> ReplayReport:
    """Reset ``driver`` (a ``lwd_sim`` RobotDriver) with ``seed``, apply ``commands``, compare to ``expected``."""
    driver.reset(seed=seed)
    pairs = zip(commands, expected, strict=True)
    drift = np.stack([np.abs(driver.step(command).qpos - target) for command, target in pairs])
    return ReplayReport(task, len(commands), float(drift.max()), float(drift.mean()), tuple(drift[-1].tolist()))


def replay_bag(bag: str | Path, make_driver: Callable[[str], Any], seed: int = 0) -> ReplayReport:
    """Replay a bag on the driver ``make_driver(task)`` builds for the bag's task (e.g. lwd_sim's AlohaSimDriver).

    The driver is passed in so the robot-side logger does not depend on the simulator package.
    """
    task, commands, expected = recorded_trajectory(bag)
    driver = make_driver(task)
    try:
        return replay(driver, commands, expected, seed, task)
    finally:
        driver.close()

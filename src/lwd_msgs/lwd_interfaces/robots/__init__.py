"""The robot profiles the stack ships, one module per kind of robot; ``robot_description`` looks one up."""

from __future__ import annotations

from lwd_interfaces.robot import RobotDescription
from lwd_interfaces.robots.aloha import ALOHA, ALOHA_SIM

ROBOTS: dict[str, RobotDescription] = {robot.name: robot for robot in (ALOHA, ALOHA_SIM)}


def robot_description(name: str) -> RobotDescription:
    """The description of robot profile ``name``; an unknown name lists the known ones."""
    if name not in ROBOTS:
        raise ValueError(f"unknown robot profile {name!r}; known profiles are {sorted(ROBOTS)}")
    return ROBOTS[name]

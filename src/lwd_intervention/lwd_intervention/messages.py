"""Build the messages the intervention package produces, as rosbags typestore objects.

Off ROS (the ``lwd`` runner, tests, the recorder's in-process path) these objects
serialize to the same CDR bytes as rclpy's; topic names come from ``lwd_interfaces.topics``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from lwd_interfaces import lwd_typestore

from lwd_intervention.arbiter import NS_PER_S, StepOutput
from lwd_intervention.labels import EpisodeEventRecord, RewardLabelRecord


def _types():
    return lwd_typestore().types


def header(stamp_ns: int, frame_id: str = "") -> object:
    """A ``std_msgs/Header`` stamped ``stamp_ns``."""
    types = _types()
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
    )


def stamp_to_ns(stamp: object) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time`` (rosbags or rclpy)."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def joint_command_msg(positions: np.ndarray, stamp_ns: int, joint_names: Sequence[str]) -> object:
    """A ``sensor_msgs/JointState`` carrying joint-position command ``positions``."""
    return _types()["sensor_msgs/msg/JointState"](
        header=header(stamp_ns),
        name=list(joint_names),
        position=np.asarray(positions, dtype=np.float64),
        velocity=np.zeros(0, dtype=np.float64),
        effort=np.zeros(0, dtype=np.float64),
    )


def intervention_state_msg(output: StepOutput) -> object:
    """The ``lwd_msgs/InterventionState`` of one arbiter step."""
    return _types()["lwd_msgs/msg/InterventionState"](
        header=header(output.stamp_ns), mode=int(output.mode), source=output.source, active=output.intervention
    )


def reward_label_msg(label: RewardLabelRecord) -> object:
    """The ``lwd_msgs/RewardLabel`` of an episode label."""
    return _types()["lwd_msgs/msg/RewardLabel"](
        header=header(label.stamp_ns),
        episode_id=label.episode_id,
        reward=label.reward,
        terminal=label.terminal,
        success=label.success,
        source=label.source,
    )


def episode_event_msg(event: EpisodeEventRecord) -> object:
    """The ``lwd_msgs/EpisodeEvent`` of an episode lifecycle event."""
    info = event.info
    return _types()["lwd_msgs/msg/EpisodeEvent"](
        header=header(event.stamp_ns),
        event=int(event.kind),
        episode_id=info.episode_id,
        robot_id=info.robot_id,
        task=info.task,
        instruction=info.instruction,
        policy_version=info.policy_version,
    )

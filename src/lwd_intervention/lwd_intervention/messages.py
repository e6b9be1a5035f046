"""Build the messages the intervention package produces, as rosbags typestore objects.

Off ROS (the ``lwd`` runner, tests, the recorder's in-process path) these objects
serialize to the same CDR bytes as rclpy's; topic names come from ``lwd_interfaces.topics``.
``header`` and ``stamp_to_ns`` are the shared builders of ``lwd_interfaces.messages``;
``joint_command_msg`` wraps its ``joint_state``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from lwd_interfaces import lwd_typestore
from lwd_interfaces.messages import header, joint_state
from lwd_interfaces.messages import stamp_ns as stamp_to_ns

from lwd_intervention.arbiter import StepOutput
from lwd_intervention.labels import EpisodeEventRecord, RewardLabelRecord

__all__ = [
    "episode_event_msg",
    "header",
    "intervention_state_msg",
    "joint_command_msg",
    "reward_label_msg",
    "stamp_to_ns",
]


def _types():
    return lwd_typestore().types


def joint_command_msg(positions: np.ndarray, stamp_ns: int, joint_names: Sequence[str]) -> object:
    """A ``sensor_msgs/JointState`` carrying joint-position command ``positions``."""
    return joint_state(stamp_ns, joint_names, positions)


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

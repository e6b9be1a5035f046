"""The policy's messages, free of rclpy: stamps as seconds, and the ``ActionChunk`` both hosts publish.

Messages are built as ``lwd_interfaces`` typestore objects; the ROS node publishes their CDR bytes
(``lwd_interfaces.ros.publish_message``) and the ``lwd`` runner records them, so both hosts share
one builder. Images are decoded by ``lwd_interfaces.messages.image_pixels``.
"""

from __future__ import annotations

import numpy as np
from lwd_interfaces import lwd_typestore
from lwd_interfaces.messages import header

from lwd_policy.blending import Chunk

NS_PER_S = 1_000_000_000


def stamp_seconds(sec: int, nanosec: int) -> float:
    """A ``builtin_interfaces/Time`` as float seconds."""
    return int(sec) + int(nanosec) / NS_PER_S


def action_chunk_msg(chunk: Chunk, step_period: float, stamp_ns: int) -> object:
    """The ``lwd_msgs/ActionChunk`` describing ``chunk``, stamped ``stamp_ns`` (a typestore object)."""
    horizon, action_dim = chunk.actions.shape
    return lwd_typestore().types["lwd_msgs/msg/ActionChunk"](
        header=header(stamp_ns),
        horizon=int(horizon),
        action_dim=int(action_dim),
        step_period=float(step_period),
        actions=chunk.actions.astype(np.float32).reshape(-1),
        policy_version=chunk.policy_version,
        chunk_id=int(chunk.chunk_id),
        inference_latency=float(chunk.inference_latency),
    )

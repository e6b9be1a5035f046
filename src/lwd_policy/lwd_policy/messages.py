"""Conversions between ROS message fields and the runtime's numpy values, free of rclpy.

The policy node uses these on rclpy messages; tests use them on rosbags
messages built from the same ``.msg`` definitions, so both see one code path.
Images are decoded by ``lwd_interfaces.messages.image_pixels``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lwd_policy.blending import Chunk

NS_PER_S = 1_000_000_000


def stamp_seconds(sec: int, nanosec: int) -> float:
    """A ``builtin_interfaces/Time`` as float seconds."""
    return int(sec) + int(nanosec) / NS_PER_S


def seconds_to_stamp(seconds: float) -> tuple[int, int]:
    """Float seconds → ``(sec, nanosec)`` of a ``builtin_interfaces/Time``."""
    total = round(seconds * NS_PER_S)
    return total // NS_PER_S, total % NS_PER_S


def action_chunk_fields(chunk: Chunk, step_period: float) -> dict[str, Any]:
    """The fields of an ``lwd_msgs/ActionChunk`` (header aside) describing ``chunk``."""
    horizon, action_dim = chunk.actions.shape
    return {
        "horizon": int(horizon),
        "action_dim": int(action_dim),
        "step_period": float(step_period),
        "actions": chunk.actions.astype(np.float32).reshape(-1),
        "policy_version": chunk.policy_version,
        "chunk_id": int(chunk.chunk_id),
        "inference_latency": float(chunk.inference_latency),
    }

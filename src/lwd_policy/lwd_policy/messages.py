"""Conversions between ROS message fields and the runtime's numpy values, free of rclpy.

The policy node uses these on rclpy messages; tests use them on rosbags
messages built from the same ``.msg`` definitions, so both see one code path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lwd_policy.blending import Chunk

NS_PER_S = 1_000_000_000
_CHANNELS = {"rgb8": 3, "bgr8": 3}


class MessageError(ValueError):
    """A message cannot be converted (unsupported encoding, inconsistent sizes)."""


def stamp_seconds(sec: int, nanosec: int) -> float:
    """A ``builtin_interfaces/Time`` as float seconds."""
    return int(sec) + int(nanosec) / NS_PER_S


def seconds_to_stamp(seconds: float) -> tuple[int, int]:
    """Float seconds → ``(sec, nanosec)`` of a ``builtin_interfaces/Time``."""
    total = round(seconds * NS_PER_S)
    return total // NS_PER_S, total % NS_PER_S


def image_to_array(encoding: str, height: int, width: int, step: int, data: bytes | np.ndarray) -> np.ndarray:
    """A ``sensor_msgs/Image`` (rgb8 or bgr8) as a uint8 ``HxWx3`` RGB array (row padding removed)."""
    if encoding not in _CHANNELS:
        raise MessageError(f"unsupported image encoding {encoding!r}; expected one of {sorted(_CHANNELS)}")
    row = width * _CHANNELS[encoding]
    buffer = np.frombuffer(bytes(data) if not isinstance(data, np.ndarray) else data.tobytes(), dtype=np.uint8)
    if step < row or buffer.size < step * height:
        raise MessageError(f"image {width}x{height} {encoding}: step {step} and {buffer.size} bytes are inconsistent")
    pixels = buffer[: step * height].reshape(height, step)[:, :row].reshape(height, width, 3)
    return np.ascontiguousarray(pixels[:, :, ::-1] if encoding == "bgr8" else pixels)


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

"""Builders of the standard messages every off-ROS host publishes (rosbags typestore objects).

They serialize to the same CDR bytes as rclpy's messages; hosts hand them to the
recorder exactly as a ROS node would hand it serialized bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lwd_interfaces.typestore import lwd_typestore

NS_PER_S = 1_000_000_000


def header(stamp_ns: int, frame_id: str = "") -> object:
    """A ``std_msgs/Header`` stamped ``stamp_ns``."""
    types = lwd_typestore().types
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
    )


def stamp_ns(stamp: object) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time`` (rosbags or rclpy)."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def joint_state(
    stamp: int,
    names: Sequence[str],
    position: np.ndarray,
    velocity: np.ndarray | None = None,
    frame_id: str = "",
) -> object:
    """A ``sensor_msgs/JointState`` (measured state, or a joint-position command when ``velocity`` is None)."""
    empty = np.zeros(0, dtype=np.float64)
    return lwd_typestore().types["sensor_msgs/msg/JointState"](
        header=header(stamp, frame_id),
        name=list(names),
        position=np.asarray(position, dtype=np.float64),
        velocity=empty if velocity is None else np.asarray(velocity, dtype=np.float64),
        effort=empty,
    )


IMAGE_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
"""The ``sensor_msgs/Image`` encodings :func:`image_pixels` reads (8 bits per channel)."""


def rgb8_image(stamp: int, camera: str, pixels: np.ndarray) -> object:
    """A ``sensor_msgs/Image`` holding an HxWx3 uint8 RGB array.

    The one image encoder of the stack: the sim driver node publishes it and the off-ROS hosts
    record it, so robots and tests take the same path (no cv_bridge).
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"an rgb8 image must be HxWx3 uint8, got {pixels.dtype} {pixels.shape}")
    height, width, _ = pixels.shape
    return lwd_typestore().types["sensor_msgs/msg/Image"](
        header=header(stamp, frame_id=camera),
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=width * 3,
        data=np.ascontiguousarray(pixels).reshape(-1),
    )


def image_pixels(message: object) -> np.ndarray:
    """An HxWx3 uint8 RGB array from a ``sensor_msgs/Image`` (rosbags or rclpy), whatever its 8-bit encoding.

    Rows may be padded (``step`` > width x channels). A message that is not a well-formed image
    of a known encoding raises ValueError naming what is wrong.
    """
    encoding = str(message.encoding)  # type: ignore[attr-defined]
    if encoding not in IMAGE_CHANNELS:
        raise ValueError(f"image encoding {encoding!r} is not one of {sorted(IMAGE_CHANNELS)}")
    height, width, step = int(message.height), int(message.width), int(message.step)  # type: ignore[attr-defined]
    channels = IMAGE_CHANNELS[encoding]
    data = np.frombuffer(memoryview(message.data), dtype=np.uint8)  # type: ignore[attr-defined]
    if height <= 0 or width <= 0 or step < width * channels or data.size < height * step:
        raise ValueError(f"malformed {encoding} image: {height}x{width}, step {step}, {data.size} bytes of data")
    pixels = data[: height * step].reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    if encoding.startswith("bgr"):
        pixels = pixels[:, :, 2::-1]
    return np.ascontiguousarray(pixels[:, :, :3])


def policy_version(stamp: int, version: str, uri: str, sha256: str, channel: str) -> object:
    """A ``lwd_msgs/PolicyVersion`` announcement."""
    return lwd_typestore().types["lwd_msgs/msg/PolicyVersion"](
        header=header(stamp), version=version, uri=uri, sha256=sha256, channel=channel
    )


def pose_array(stamp: int, poses: np.ndarray, frame_id: str = "world") -> object:
    """A ``geometry_msgs/PoseArray`` of ``poses [N, 7]`` rows (x, y, z, qw, qx, qy, qz)."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] != 7:
        raise ValueError(f"poses must be [N, 7] (x, y, z, qw, qx, qy, qz), got shape {poses.shape}")
    types = lwd_typestore().types
    return types["geometry_msgs/msg/PoseArray"](
        header=header(stamp, frame_id=frame_id),
        poses=[
            types["geometry_msgs/msg/Pose"](
                position=types["geometry_msgs/msg/Point"](x=row[0], y=row[1], z=row[2]),
                orientation=types["geometry_msgs/msg/Quaternion"](x=row[4], y=row[5], z=row[6], w=row[3]),
            )
            for row in poses
        ],
    )


def pose_array_poses(message: object) -> np.ndarray:
    """The ``[N, 7]`` rows (x, y, z, qw, qx, qy, qz) of a ``geometry_msgs/PoseArray`` (rosbags or rclpy)."""
    rows = [
        (p.position.x, p.position.y, p.position.z, p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z)
        for p in message.poses  # type: ignore[attr-defined]
    ]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), 7)

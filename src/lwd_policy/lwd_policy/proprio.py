"""The policy's low-dimensional input: joint positions, then the positions of the task's objects.

Many robot cells have a perception system that reports where the task's objects are (the simulator
knows it exactly). A policy configured with ``object_slots > 0`` reads the first three coordinates
of up to that many object poses after the joints; slots a task does not fill read as zeros. Training
and inference both build the vector here, so they cannot disagree on its layout.
"""

from __future__ import annotations

import numpy as np

POSE_WIDTH = 7
"""An object pose is (x, y, z, qw, qx, qy, qz) in the robot's world frame [m]."""


class ProprioError(ValueError):
    """Joint positions or object poses that do not fit the policy's state layout."""


def no_object_poses(batch_shape: tuple[int, ...] = ()) -> np.ndarray:
    """The object poses of a robot that reports none: shape ``batch_shape + (0, 7)``."""
    return np.zeros((*batch_shape, 0, POSE_WIDTH))


def policy_state(qpos: np.ndarray, object_poses: np.ndarray | None, object_slots: int) -> np.ndarray:
    """``qpos [..., J]`` and ``object_poses [..., N, 7]`` → ``[..., J + 3 * object_slots]`` float32.

    Raises ProprioError when the policy needs object poses and none (or more than ``object_slots``) came.
    """
    qpos = np.asarray(qpos, dtype=np.float32)
    if object_slots == 0:
        return qpos
    poses = no_object_poses(qpos.shape[:-1]) if object_poses is None else np.asarray(object_poses, dtype=np.float32)
    if poses.ndim != qpos.ndim + 1 or poses.shape[-1] != POSE_WIDTH or poses.shape[:-2] != qpos.shape[:-1]:
        raise ProprioError(f"object poses must be [..., N, {POSE_WIDTH}] matching qpos {qpos.shape}, got {poses.shape}")
    count = poses.shape[-2]
    if count == 0:
        raise ProprioError(f"the policy reads {object_slots} object positions, but no object poses were given")
    if count > object_slots:
        raise ProprioError(f"{count} object poses given, the policy has only {object_slots} object slots")
    positions = np.zeros((*qpos.shape[:-1], object_slots, 3), dtype=np.float32)
    positions[..., :count, :] = poses[..., :3]
    return np.concatenate([qpos, positions.reshape(*qpos.shape[:-1], 3 * object_slots)], axis=-1)

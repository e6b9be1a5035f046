"""The newest value of each policy input, assembled into one observation per control step.

A robot publishes its joint states, camera frames and object poses on separate topics at their own
rates. The policy host keeps the newest of each here; every joint state then becomes one
:class:`PolicyObservation` stamped with its oldest input, so the runtime's staleness check sees
the age of the slowest sensor. No observation is made until every input has arrived once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lwd_policy.inference import PolicyObservation


class LatestInputs:
    """Newest frame per camera and newest object poses, each with its stamp [s]; the instruction in force."""

    def __init__(self, cameras: Sequence[str], needs_poses: bool, instruction: str = "") -> None:
        self.cameras = tuple(cameras)
        self.needs_poses = needs_poses
        self.instruction = instruction
        self._images: dict[str, tuple[float, np.ndarray]] = {}
        self._poses: tuple[float, np.ndarray] | None = None

    def set_image(self, camera: str, stamp: float, pixels: np.ndarray) -> None:
        """The newest HxWx3 RGB frame of ``camera``."""
        self._images[camera] = (stamp, pixels)

    def set_object_poses(self, stamp: float, poses: np.ndarray) -> None:
        """The newest task-object poses ``[N, 7]``."""
        self._poses = (stamp, poses)

    def clear(self) -> None:
        """Forget every frame and pose (the host stopped serving)."""
        self._images.clear()
        self._poses = None

    def observation(self, stamp: float, qpos: Sequence[float]) -> PolicyObservation | None:
        """The observation of a joint state measured at ``stamp``; None until every input has arrived."""
        if any(camera not in self._images for camera in self.cameras) or (self.needs_poses and self._poses is None):
            return None
        stamps = [stamp, *(self._images[camera][0] for camera in self.cameras)]
        poses = None
        if self.needs_poses:
            poses_stamp, poses = self._poses
            stamps.append(poses_stamp)
        return PolicyObservation(
            stamp=min(stamps),
            qpos=np.asarray(qpos, dtype=np.float64),
            images={camera: self._images[camera][1] for camera in self.cameras},
            instruction=self.instruction,
            object_poses=poses,
        )

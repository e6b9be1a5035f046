"""Where a world point appears in each fixed camera's image: the calibration that turns recorded object positions
into image-space labels.

A robot's fixed cameras are calibrated once (intrinsics and their pose in the world frame); the product is one
3×4 pinhole projection matrix per camera: ``P @ [x, y, z, 1]`` gives ``(u·w, v·w, w)`` with ``u`` pixels to the
right and ``v`` pixels down from the image's top-left corner (pixel column i spans [i, i + 1)). BC pretraining
uses it to show the vision keypoints where the objects are in the image (``PretrainConfig.keypoint_weight``), which
spares perception the long plateau it otherwise spends finding them. It is a training label only: no policy reads
it. The file is JSON, ``{"cameras": {name: {"width": W, "height": H, "matrix": [[...4], [...4], [...4]]}}}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class CalibrationError(ValueError):
    """A camera projection file or matrix that cannot be used, with the reason."""


@dataclass(frozen=True)
class CameraProjection:
    """One fixed camera's image size and 3×4 projection matrix (world metres → pixels)."""

    width: int
    height: int
    matrix: np.ndarray

    def __post_init__(self) -> None:
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (self.width, self.height)):
            raise CalibrationError(f"image size must be positive integers, got {self.width!r}x{self.height!r}")
        matrix = np.asarray(self.matrix, dtype=np.float64)
        if matrix.shape != (3, 4) or not np.isfinite(matrix).all():
            raise CalibrationError(f"a projection matrix must be 3x4 and finite, got shape {matrix.shape}")
        object.__setattr__(self, "matrix", matrix)

    def normalized(self, points: np.ndarray) -> np.ndarray:
        """``points [..., 3]`` (metres, NaN where unknown) → ``[..., 2]`` image positions scaled to [-1, 1] across
        the image (x right, y down; the image's edges at ±1), NaN for unknown points and for points behind the
        camera."""
        points = np.asarray(points, dtype=np.float64)
        homogeneous = points @ self.matrix[:, :3].T + self.matrix[:, 3]
        depth = homogeneous[..., 2:3]
        with np.errstate(divide="ignore", invalid="ignore"):
            pixels = homogeneous[..., :2] / np.where(depth > 0, depth, np.nan)
        return np.stack([2 * pixels[..., 0] / self.width - 1, 2 * pixels[..., 1] / self.height - 1], axis=-1)


@dataclass(frozen=True)
class CameraCalibration:
    """The projections of a robot's fixed cameras, by camera name."""

    cameras: dict[str, CameraProjection]

    def normalized(self, points: np.ndarray, cameras: tuple[str, ...]) -> np.ndarray:
        """``points [B, N, 3]`` → ``[B, len(cameras), N, 2]``: each named camera's ``CameraProjection.normalized``."""
        missing = [name for name in cameras if name not in self.cameras]
        if missing:
            raise CalibrationError(f"no projection for camera(s) {missing}; calibrated: {sorted(self.cameras)}")
        return np.stack([self.cameras[name].normalized(points) for name in cameras], axis=1)

    def to_json(self) -> str:
        """The JSON file's text."""
        return json.dumps(
            {
                "cameras": {
                    name: {"width": c.width, "height": c.height, "matrix": c.matrix.tolist()}
                    for name, c in self.cameras.items()
                }
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, source: str = "camera calibration") -> CameraCalibration:
        """Parse the JSON file's text; ``CalibrationError`` names ``source`` and what is wrong."""
        try:
            cameras = json.loads(text)["cameras"]
            if not isinstance(cameras, dict) or not cameras:
                raise CalibrationError("'cameras' must map at least one camera name to its projection")
            return cls({str(name): _projection(entry) for name, entry in cameras.items()})
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise CalibrationError(f"{source}: not a camera calibration ({error})") from error

    @classmethod
    def read(cls, path: Path) -> CameraCalibration:
        """Load a calibration file."""
        try:
            text = path.read_text()
        except OSError as error:
            raise CalibrationError(f"cannot read camera calibration {path}: {error}") from error
        return cls.from_json(text, str(path))


def _projection(entry: dict) -> CameraProjection:
    matrix = np.asarray(entry["matrix"], dtype=np.float64)
    return CameraProjection(int(entry["width"]), int(entry["height"]), matrix)


def pinhole_matrix(
    position: np.ndarray, rotation: np.ndarray, fovy_degrees: float, width: int, height: int
) -> np.ndarray:
    """The 3×4 projection of an ideal pinhole camera at ``position`` whose world-frame axes are the columns of
    ``rotation`` (x right, y up, looking along -z, as MuJoCo and OpenGL place cameras), with a vertical field of
    view of ``fovy_degrees`` over ``height`` pixels and square pixels."""
    focal = (height / 2) / math.tan(math.radians(fovy_degrees) / 2)
    intrinsics = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    to_optical = np.diag([1.0, -1.0, -1.0])  # OpenGL camera axes -> OpenCV's (y down, looking along +z)
    world_to_camera = to_optical @ np.asarray(rotation, dtype=np.float64).T
    translation = -world_to_camera @ np.asarray(position, dtype=np.float64)
    return intrinsics @ np.hstack([world_to_camera, translation[:, None]])

"""Fast CPU camera rendering: one persistent ``mujoco.Renderer``, shadows and reflections off.

gym-aloha renders three 480x640 cameras through dm_control on every step (about 6 steps/s on
our 2-core VM); rendering only the configured cameras at policy resolution with one reused
OpenGL context is an order of magnitude faster. Multisample anti-aliasing is off too (the scene
asks for 4x, which costs llvmpipe about 3x per frame at 96x128). ``MUJOCO_GL`` defaults to ``egl`` (headless; set
by the package ``__init__``).

A step's images are rendered when first read (:class:`StepImages`): a simulated robot whose policy plans one chunk
every many steps and records nothing (an evaluation episode) renders only the frames the policy looks at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import mujoco
import numpy as np
from lwd_interfaces.camera_projection import CameraCalibration, CameraProjection, pinhole_matrix
from lwd_interfaces.robot import ConfigError

_TARGETING = (int(mujoco.mjtCamLight.mjCAMLIGHT_TARGETBODY), int(mujoco.mjtCamLight.mjCAMLIGHT_TARGETBODYCOM))


def _fixed_in_world(model: mujoco.MjModel, camera) -> bool:
    """Whether nothing can move the camera: its body, and the body it aims at if it aims, are welded to the world."""
    bodies = [int(camera.bodyid[0])]
    if int(camera.mode[0]) in _TARGETING:
        bodies.append(int(model.cam_targetbodyid[camera.id]))
    return all(int(model.body_weldid[body]) == 0 for body in bodies)


class CameraRig:
    """Renders a fixed list of named model cameras at one resolution, reusing one context."""

    def __init__(self, model: mujoco.MjModel, cameras: list[str], height: int, width: int) -> None:
        valid = [model.camera(i).name for i in range(model.ncam)]
        unknown = [name for name in cameras if name not in valid]
        if unknown:
            raise ConfigError(f"unknown camera(s) {unknown}; this model has {valid}")
        if len(set(cameras)) != len(cameras):
            raise ConfigError(f"duplicate camera names in {cameras}")
        if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
            raise ConfigError(f"image size must be positive integers, got height={height!r} width={width!r}")
        self.cameras = list(cameras)
        self.height = height
        self.width = width
        self._renderer: mujoco.Renderer | None = None
        if self.cameras:
            model.vis.global_.offheight = max(model.vis.global_.offheight, height)
            model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
            model.vis.quality.offsamples = 0
            try:
                self._renderer = mujoco.Renderer(model, height=height, width=width)
            except mujoco.FatalError as error:
                raise ConfigError(
                    f"cannot create an OpenGL context for rendering ({error}); with no display, set MUJOCO_GL=egl "
                    "(or osmesa) before anything imports mujoco (importing lwd_sim first does it)"
                ) from error
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False

    def render(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """One uint8 (H, W, 3) image per configured camera, for the current state of ``data``."""
        images: dict[str, np.ndarray] = {}
        if self._renderer is None:
            return images
        for name in self.cameras:
            self._renderer.update_scene(data, camera=name)
            images[name] = self._renderer.render().copy()
        return images

    def calibration(self, model: mujoco.MjModel, data: mujoco.MjData) -> CameraCalibration:
        """Each configured camera's projection at this resolution, as a calibration of the real cameras would give it.

        Only a camera fixed in the world has one projection; one that moves with a body (a wrist camera) raises
        ``ConfigError``.
        """
        mujoco.mj_kinematics(model, data)
        mujoco.mj_camlight(model, data)
        projections = {}
        for name in self.cameras:
            camera = model.camera(name)
            if not _fixed_in_world(model, camera):
                raise ConfigError(f"camera {name!r} moves with the robot; only fixed cameras have one projection")
            matrix = pinhole_matrix(
                data.cam_xpos[camera.id], data.cam_xmat[camera.id].reshape(3, 3), float(camera.fovy[0]),
                self.width, self.height,
            )  # fmt: skip
            projections[name] = CameraProjection(self.width, self.height, matrix)
        return CameraCalibration(projections)

    def close(self) -> None:
        """Release the OpenGL context."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


class StaleImagesError(RuntimeError):
    """A step's images were first read after the simulation had moved past that step."""


class StepImages(Mapping[str, np.ndarray]):
    """One control step's camera images, rendered on first read and kept.

    Rendering is most of a simulated control step, and most steps' frames are never looked at when nothing is
    recorded. The frames can only be rendered while the simulation still holds the step's state, so reading
    them for the first time after it stepped on raises :class:`StaleImagesError` instead of returning a later
    frame. Which cameras there are is known without rendering.
    """

    def __init__(self, rig: CameraRig, data: mujoco.MjData, is_current: Callable[[], bool]) -> None:
        self._rig = rig
        self._data = data
        self._is_current = is_current
        self._images: dict[str, np.ndarray] | None = None

    def _rendered(self) -> dict[str, np.ndarray]:
        if self._images is None:
            if not self._is_current():
                raise StaleImagesError("a control step's images were first read after the simulation stepped on")
            self._images = self._rig.render(self._data)
        return self._images

    def __getitem__(self, camera: str) -> np.ndarray:
        if camera not in self._rig.cameras:
            raise KeyError(camera)
        return self._rendered()[camera]

    def __contains__(self, camera: object) -> bool:
        return camera in self._rig.cameras

    def __iter__(self) -> Iterator[str]:
        return iter(self._rig.cameras)

    def __len__(self) -> int:
        return len(self._rig.cameras)

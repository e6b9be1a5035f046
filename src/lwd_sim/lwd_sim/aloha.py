"""The simulated ALOHA dual-arm robot: gym-aloha's robot and scenes (and ours) driven directly with ``mujoco``.

Conventions are gym-aloha's: 14-D joint-position commands (grippers normalized 0 closed .. 1
open), 50 Hz control (10 physics steps of 2 ms), START_ARM_POSE at reset, object poses sampled
from the episode seed (gym-aloha's ranges for its two tasks), and a stage reward that reaches
``max_stage`` on success (gym-aloha's 0..4 for its tasks; see :mod:`lwd_sim.tasks`).

Beyond the RobotDriver interface it exposes the ground truth a simulator has and a real robot
does not (``stage_reward``, ``success``, ``object_poses()``, ``contacts()``, ``model``/``data``);
the scripted operator and the evaluation use it. A bad command raises CommandError before
anything touches the physics state.
"""

from __future__ import annotations

import mujoco
import numpy as np
from gym_aloha.constants import (
    DT,
    START_ARM_POSE,
    normalize_puppet_gripper_position,
    normalize_puppet_gripper_velocity,
    unnormalize_puppet_gripper_position,
)
from lwd_interfaces.camera_projection import CameraCalibration
from lwd_interfaces.robot import ConfigError, Observation, RobotDescription, RobotDriver, validate_command
from lwd_interfaces.robots import ALOHA_SIM

from lwd_sim.rendering import CameraRig, StepImages
from lwd_sim.tasks import TASKS, ContactSet, TaskSpec

DEFAULT_CAMERAS = ("top",)
DEFAULT_HEIGHT = 96
DEFAULT_WIDTH = 128


def command_to_ctrl(command: np.ndarray) -> np.ndarray:
    """Map a validated 14-D command to the 16 position actuators (two mirrored fingers per gripper)."""
    left = unnormalize_puppet_gripper_position(command[6])
    right = unnormalize_puppet_gripper_position(command[13])
    return np.concatenate([command[:6], [left, -left], command[7:13], [right, -right]])


class AlohaSimDriver(RobotDriver):
    """MuJoCo ALOHA bimanual robot for the tasks of :data:`lwd_sim.tasks.TASKS`."""

    def __init__(
        self,
        task: str = "transfer_cube",
        cameras: list[str] | tuple[str, ...] = DEFAULT_CAMERAS,
        height: int = DEFAULT_HEIGHT,
        width: int = DEFAULT_WIDTH,
    ) -> None:
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; valid tasks are {sorted(TASKS)}")
        self.spec: TaskSpec = TASKS[task]
        self.model = self.spec.model()
        self.data = mujoco.MjData(self.model)
        self.substeps = round(DT / self.model.opt.timestep)
        self._rig = CameraRig(self.model, list(cameras), height, width)
        self._geom_names = [self.model.geom(i).name for i in range(self.model.ngeom)]
        self._object_bodies = {name: self.model.body(name).id for name in self.spec.objects}
        self._object_qpos = {
            name: int(self.model.jnt_qposadr[self.model.body_jntadr[body]])
            for name, body in self._object_bodies.items()
        }
        self.seed: int | None = None
        self.instruction = ""
        self.target = ""
        self.steps = 0
        self.last_command = np.zeros(ALOHA_SIM.dof)
        self._state_serial = 0

    @property
    def task(self) -> str:
        """The task name."""
        return self.spec.name

    @property
    def description(self) -> RobotDescription:
        """The simulated ALOHA (gym-aloha joint order)."""
        return ALOHA_SIM

    @property
    def cameras(self) -> list[str]:
        """The configured cameras."""
        return list(self._rig.cameras)

    def calibration(self) -> CameraCalibration:
        """The configured cameras' projections (``lwd_interfaces.camera_projection``), for image-space labels."""
        return self._rig.calibration(self.model, self.data)

    @property
    def max_stage(self) -> int:
        """The stage reward that means success."""
        return self.spec.max_stage

    def reset(self, seed: int | None = None, instructions: str = "trained", target: str | None = None) -> Observation:
        """Arms to START_ARM_POSE, objects to poses drawn from ``seed``; picks target and paraphrase from ``seed``.

        ``instructions`` names the set the paraphrase comes from (:data:`lwd_sim.tasks.INSTRUCTION_SETS`);
        the scene and the target depend on the seed only, so both sets give the same episode start.
        A task with targets draws the one its instruction names from the seed before the paraphrase;
        ``target`` overrides that draw (same scene, another named object).
        """
        paraphrases = self.spec.instruction_set(instructions)
        if target is not None:
            self.spec.check_target(target)
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31))
        self.seed = int(seed)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:16] = START_ARM_POSE
        self.data.ctrl[:] = START_ARM_POSE
        for name, pose in self.spec.sample_poses(self.seed).items():
            address = self._object_qpos[name]
            self.data.qpos[address : address + 7] = pose
        mujoco.mj_forward(self.model, self.data)
        self._state_serial += 1
        rng = np.random.default_rng(self.seed)
        drawn = self.spec.targets[int(rng.integers(len(self.spec.targets)))] if self.spec.targets else ""
        self.target = drawn if target is None else target
        self.instruction = paraphrases[int(rng.integers(len(paraphrases)))].format(target=self.target)
        self.steps = 0
        self.last_command = self.measured_qpos()
        return self.observe()

    def step(self, command: np.ndarray) -> Observation:
        """Validate, apply for one 20 ms control period, and observe; bad commands never reach physics."""
        valid = validate_command(command, ALOHA_SIM.dof)
        self.data.ctrl[:] = command_to_ctrl(valid)
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        self._state_serial += 1
        self.steps += 1
        self.last_command = valid.copy()
        return self.observe()

    def observe(self) -> Observation:
        """The current measured state and the configured camera images; the images are rendered when first read,
        which must happen before the next ``step`` or ``reset`` (``lwd_sim.rendering.StepImages``)."""
        serial = self._state_serial
        return Observation(
            stamp_ns=round(self.data.time * 1e9),
            qpos=self.measured_qpos(),
            qvel=self.measured_qvel(),
            images=StepImages(self._rig, self.data, lambda: self._state_serial == serial),
            object_poses=np.stack(list(self.object_poses().values())),
        )

    def measured_qpos(self) -> np.ndarray:
        """14-D joint positions, grippers normalized (gym-aloha ``get_qpos``)."""
        qpos = self.data.qpos
        return np.concatenate(
            [
                qpos[0:6],
                [normalize_puppet_gripper_position(qpos[6])],
                qpos[8:14],
                [normalize_puppet_gripper_position(qpos[14])],
            ]
        )

    def measured_qvel(self) -> np.ndarray:
        """14-D joint velocities, grippers normalized (gym-aloha ``get_qvel``)."""
        qvel = self.data.qvel
        return np.concatenate(
            [
                qvel[0:6],
                [normalize_puppet_gripper_velocity(qvel[6])],
                qvel[8:14],
                [normalize_puppet_gripper_velocity(qvel[14])],
            ]
        )

    def contacts(self) -> ContactSet:
        """The (geom, geom) name pairs in contact now."""
        names = self._geom_names
        contact = self.data.contact  # the active contacts' fields as arrays: no Python object per contact
        return frozenset(zip([names[g] for g in contact.geom1], [names[g] for g in contact.geom2], strict=True))

    def stage_of(self, contacts: ContactSet) -> int:
        """The task's stage reward for ``contacts`` and this episode's target."""
        return self.spec.stage(contacts, self.target)

    @property
    def stage_reward(self) -> int:
        """The task's stage reward for the current state (0..max_stage)."""
        return self.stage_of(self.contacts())

    @property
    def success(self) -> bool:
        """True when the stage reward reaches max_stage."""
        return self.stage_reward >= self.spec.max_stage

    def object_poses(self) -> dict[str, np.ndarray]:
        """Each task object's world pose as (x, y, z, qw, qx, qy, qz)."""
        return {
            name: np.concatenate([self.data.xpos[body], self.data.xquat[body]])
            for name, body in self._object_bodies.items()
        }

    def close(self) -> None:
        """Release the renderer."""
        self._rig.close()

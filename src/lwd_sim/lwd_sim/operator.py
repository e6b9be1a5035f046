"""The scripted operator: a stand-in for the human who demonstrates and takes over.

It plans end-effector goals from object poses (``lwd_sim.planner``) and tracks them with
differential IK on MuJoCo Jacobians (``lwd_sim.kinematics``), producing 14-D joint commands.
It replans from whatever state the robot is in, so it can take over from a policy at any time.

Runner loop (one episode)::

    operator.reset(driver)                      # after driver.reset(seed)
    while not done:
        policy_command = policy(observation)
        if not operator.in_control:
            operator.decide(driver, policy_command)   # -> TakeoverDecision | None
        command = operator.command(driver) if operator.in_control else policy_command
        observation = driver.step(command)
        if operator.in_control and operator.wants_hand_back(driver):
            operator.hand_back(driver)

``decide`` fires on: no stage-reward progress for ``stall_seconds``; an unsafe state (joints near
their limits, a non-finite policy command, the object off the table or out of the grip for
``drop_seconds``, an arm colliding with the other arm or the table); or a random spot check. Each
episode has a patience budget of ``patience`` takeovers. While in control the operator drives to
the end of the sub-goal that was active when it took over ("grasp", "handover", "insert") and then
wants to hand back.
``demonstrate`` runs whole episodes. ``Imperfection`` adds a reaction delay, joint noise and
occasional misplaced grasps (all off by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from lwd_interfaces.robot import Observation

from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.kinematics import ArmKinematics, orientation_error
from lwd_sim.motion import OPEN, ArmGoal, Goals, Plan, Scene
from lwd_sim.planner import plan_for

ARM_COMMAND = {"left": slice(0, 6), "right": slice(7, 13)}
GRIPPER_COMMAND = {"left": 6, "right": 13}
MAX_LEAD = 0.25
"""Largest gap [rad] between the commanded and the measured arm joint (limits integrator wind-up)."""
ROTATION_TOLERANCE = 0.15
UNMET_STEPS = 8
"""A phase whose precondition (e.g. "the right gripper holds the cube") fails this long is replanned."""


@dataclass(frozen=True)
class Imperfection:
    """How the operator departs from an oracle. All zero means a perfect operator."""

    reaction_delay_steps: int = 0
    action_noise_std: float = 0.0
    mistake_probability: float = 0.0
    mistake_offset_m: float = 0.025

    @classmethod
    def human(cls) -> Imperfection:
        """A plausible human: 200 ms reaction, 0.01 rad joint noise, 15% of grasps misplaced by 2.5 cm."""
        return cls(reaction_delay_steps=10, action_noise_std=0.01, mistake_probability=0.15, mistake_offset_m=0.025)


@dataclass(frozen=True)
class TakeoverTriggers:
    """When the operator takes over from the policy."""

    stall_seconds: float = 4.0
    drop_seconds: float = 0.2
    """How long the stage must stay below "lifted" before the object counts as dropped: finger
    contacts flicker off for 1-3 steps while a grip holds (measured on insertion, BENCHMARKS.md)."""
    joint_limit_margin: float = 0.05
    spot_check_probability: float = 0.0
    patience: int = 3
    control_hz: float = 50.0


@dataclass(frozen=True)
class OperatorConfig:
    """Scripted operator settings."""

    triggers: TakeoverTriggers = field(default_factory=TakeoverTriggers)
    imperfection: Imperfection = field(default_factory=Imperfection)
    settle_steps: int = 5


@dataclass(frozen=True)
class TakeoverDecision:
    """Why and when the operator took control."""

    reason: str
    step: int
    subgoal: str


@dataclass
class Demonstration:
    """One scripted episode: the executed commands and its outcome."""

    seed: int
    success: bool
    steps: int
    commands: np.ndarray
    stages: list[int]


class ScriptedOperator:
    """Demonstrates tasks and takes over live from a policy; see the module docstring for the loop."""

    def __init__(self, config: OperatorConfig | None = None, seed: int | None = None) -> None:
        self.config = config or OperatorConfig()
        self._rng = np.random.default_rng(seed)
        self._plan: Plan | None = None
        self._arms: dict[str, ArmKinematics] = {}
        self.in_control = False
        self.takeovers: list[TakeoverDecision] = []

    # ----- episode and control state -------------------------------------------------------

    def reset(self, driver: AlohaSimDriver, seed: int | None = None) -> None:
        """Start a new episode on ``driver`` (call after ``driver.reset``)."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        plan = self._plan
        if (
            plan is None
            or (plan.task, plan.target) != (driver.task, driver.target)
            or self._arms["left"].model is not driver.model
        ):
            self._plan = plan_for(driver.task, driver.target)
            self._arms = {side: ArmKinematics(driver.model, side) for side in ("left", "right")}
        self.in_control = False
        self.takeovers = []
        self._reference = driver.measured_qpos()
        self._best_stage = driver.stage_reward
        self._previous_stage = self._best_stage
        self._released_at: int | None = None
        self._last_progress = driver.steps
        self._takeover_stage = self._best_stage
        self._pending: tuple[str, int] | None = None
        self._phase = 0
        self._finished = False

    @property
    def phase(self) -> str:
        """Name of the phase the operator is executing (or would start from)."""
        return self._require_plan().phases[self._phase].name

    @property
    def patience_left(self) -> int:
        """Takeovers still allowed in this episode."""
        return self.config.triggers.patience - len(self.takeovers)

    def take_over(self, driver: AlohaSimDriver, reason: str) -> TakeoverDecision:
        """Take control now, replanning from the current state."""
        plan = self._require_plan()
        self._reference = driver.measured_qpos()
        scene = self._scene(driver)
        self._enter(plan.infer(scene), scene)
        self._finished = False
        self.in_control = True
        self._pending = None
        self._released_at = None
        decision = TakeoverDecision(reason, driver.steps, plan.phases[self._phase].subgoal)
        self._takeover_subgoal = decision.subgoal
        self._takeover_stage = scene.stage
        self.takeovers.append(decision)
        return decision

    def hand_back(self, driver: AlohaSimDriver) -> None:
        """Give control back to the policy; the stall timer restarts."""
        self.in_control = False
        self._last_progress = driver.steps
        self._best_stage = max(self._best_stage, driver.stage_reward)

    def wants_hand_back(self, driver: AlohaSimDriver) -> bool:
        """True once the sub-goal active at takeover is done (or the task succeeded).

        Done means the plan has moved on to the next sub-goal *and* the stage reward rose above
        its value at takeover, so a takeover always leaves the task further along.
        """
        if not self.in_control:
            return False
        if driver.success or self._finished:
            return True
        moved_on = self._require_plan().phases[self._phase].subgoal != self._takeover_subgoal
        return moved_on and driver.stage_reward > self._takeover_stage

    # ----- takeover triggers ---------------------------------------------------------------

    def decide(self, driver: AlohaSimDriver, policy_command: np.ndarray | None = None) -> TakeoverDecision | None:
        """Called once per step while the policy drives; returns a decision when the operator takes over."""
        stage = driver.stage_reward
        if stage > self._best_stage:
            self._best_stage = stage
            self._last_progress = driver.steps
        self._track_release(driver.steps, stage)
        reason = self._trigger(driver, policy_command)
        self._previous_stage = stage
        if self.in_control or self.patience_left <= 0:
            return None
        if reason is not None and self._pending is None:
            self._pending = (reason, driver.steps + self.config.imperfection.reaction_delay_steps)
        if self._pending is not None and driver.steps >= self._pending[1]:
            return self.take_over(driver, self._pending[0])
        return None

    def _trigger(self, driver: AlohaSimDriver, policy_command: np.ndarray | None) -> str | None:
        triggers = self.config.triggers
        if driver.success:
            return None
        if policy_command is not None and not np.all(np.isfinite(policy_command)):
            return "invalid_command"
        if self._near_joint_limits(driver, policy_command):
            return "joint_limit"
        if self._object_dropped(driver):
            return "object_dropped"
        if self._collision(driver):
            return "collision"
        if driver.steps - self._last_progress >= triggers.stall_seconds * triggers.control_hz:
            return "stall"
        if triggers.spot_check_probability > 0 and self._rng.random() < triggers.spot_check_probability:
            return "spot_check"
        return None

    def _near_joint_limits(self, driver: AlohaSimDriver, policy_command: np.ndarray | None) -> bool:
        margin = self.config.triggers.joint_limit_margin
        measured = driver.measured_qpos()
        for side, arm in self._arms.items():
            for joints in (measured, policy_command):
                if joints is None or not np.all(np.isfinite(joints)):
                    continue
                q = np.asarray(joints)[ARM_COMMAND[side]]
                if np.any(q < arm.lower + margin) or np.any(q > arm.upper - margin):
                    return True
        return False

    def _object_dropped(self, driver: AlohaSimDriver) -> bool:
        off_table = any(pose[2] < -0.05 for pose in driver.object_poses().values())
        triggers = self.config.triggers
        released = self._released_at
        let_go = released is not None and driver.steps - released >= triggers.drop_seconds * triggers.control_hz
        return off_table or let_go

    def _track_release(self, step: int, stage: int) -> None:
        """Remember the step the stage fell from lifted (>= 2) to not held; forget it once held again."""
        if stage >= 2:
            self._released_at = None
        elif self._previous_stage >= 2 and self._released_at is None:
            self._released_at = step

    @staticmethod
    def _collision(driver: AlohaSimDriver) -> bool:
        for first, second in driver.contacts():
            arms = {name.split("/")[0] for name in (first, second) if name.startswith("vx300s_")}
            fingers = all("gripper_finger" in name for name in (first, second) if name.startswith("vx300s_"))
            if len(arms) == 2 and not fingers:
                return True
            if "table" in (first, second) and len(arms) == 1 and not fingers:
                return True
        return False

    # ----- acting --------------------------------------------------------------------------

    def command(self, driver: AlohaSimDriver) -> np.ndarray:
        """The operator's 14-D joint command for this step (it must be in control)."""
        if not self.in_control:
            raise RuntimeError("the operator is not in control; call take_over() or decide() first")
        plan = self._require_plan()
        scene = self._scene(driver)
        phase = plan.phases[self._phase]
        self._unmet = self._unmet + 1 if phase.requires is not None and not phase.requires(scene) else 0
        self._phase_steps += 1
        if self._unmet > UNMET_STEPS or self._phase_steps > phase.timeout:
            self._enter(plan.infer(scene), scene)
            phase = plan.phases[self._phase]
        goals = self._with_mistake(phase.goals(scene, self._anchor))
        if not self._finished and self._reached(scene, goals, phase.tolerance):
            self._dwell += 1
            if self._dwell > phase.dwell:
                if not phase.final and self._phase + 1 < len(plan.phases):
                    self._enter(self._phase + 1, scene)
                else:
                    self._finished = True
        return self._track(driver, goals, phase.max_linear)

    def demonstrate(
        self,
        driver: AlohaSimDriver,
        seed: int,
        max_steps: int = 400,
        on_step: Callable[[Observation, np.ndarray], None] | None = None,
    ) -> Demonstration:
        """Run one whole scripted episode from ``driver.reset(seed)``; stops shortly after success."""
        driver.reset(seed)
        self.reset(driver)
        self.take_over(driver, "demonstration")
        commands: list[np.ndarray] = []
        stages: list[int] = []
        success_step: int | None = None
        for step in range(max_steps):
            command = self.command(driver)
            observation = driver.step(command)
            commands.append(command)
            stages.append(driver.stage_reward)
            if on_step is not None:
                on_step(observation, command)
            if success_step is None and stages[-1] >= driver.max_stage:
                success_step = step
            if success_step is not None and step - success_step >= self.config.settle_steps:
                break
        return Demonstration(seed, success_step is not None, len(commands), np.array(commands), stages)

    # ----- internals -----------------------------------------------------------------------

    def _require_plan(self) -> Plan:
        if self._plan is None:
            raise RuntimeError("call ScriptedOperator.reset(driver) before using the operator")
        return self._plan

    def _scene(self, driver: AlohaSimDriver) -> Scene:
        contacts = driver.contacts()
        return Scene(
            tools={side: arm.tool_pose(driver.data) for side, arm in self._arms.items()},
            commanded={
                side: arm.tool_pose(arm.pose_at(self._reference[ARM_COMMAND[side]])) for side, arm in self._arms.items()
            },
            objects=driver.object_poses(),
            contacts=contacts,
            stage=driver.stage_of(contacts),
        )

    def _enter(self, index: int, scene: Scene) -> None:
        self._phase = index
        self._anchor = scene
        self._dwell = 0
        self._unmet = 0
        self._phase_steps = 0
        imperfection = self.config.imperfection
        self._mistake = np.zeros(3)
        if imperfection.mistake_probability > 0 and self._rng.random() < imperfection.mistake_probability:
            angle = self._rng.uniform(0, 2 * np.pi)
            self._mistake = imperfection.mistake_offset_m * np.array([np.cos(angle), np.sin(angle), 0.0])

    def _with_mistake(self, goals: Goals) -> Goals:
        if not np.any(self._mistake):
            return goals
        return {
            side: ArmGoal(goal.position + self._mistake, goal.rotation, goal.gripper) if goal.gripper == OPEN else goal
            for side, goal in goals.items()
        }

    def _reached(self, scene: Scene, goals: Goals, tolerance: float) -> bool:
        for side, goal in goals.items():
            position, rotation = scene.tools[side]
            if np.linalg.norm(goal.position - position) > tolerance:
                return False
            if np.linalg.norm(orientation_error(goal.rotation, rotation)) > ROTATION_TOLERANCE:
                return False
        return True

    def _track(self, driver: AlohaSimDriver, goals: Goals, max_linear: float) -> np.ndarray:
        measured = driver.measured_qpos()
        command = measured.copy()
        noise = self.config.imperfection.action_noise_std
        for side, arm in self._arms.items():
            goal = goals[side]
            index = ARM_COMMAND[side]
            joints = arm.solve(self._reference[index], goal.position, goal.rotation, max_linear=max_linear)
            command[index] = np.clip(joints, measured[index] - MAX_LEAD, measured[index] + MAX_LEAD)
            command[GRIPPER_COMMAND[side]] = goal.gripper
        self._reference = command.copy()
        if noise > 0:
            command[:6] += self._rng.normal(0.0, noise, 6)
            command[7:13] += self._rng.normal(0.0, noise, 6)
        return command

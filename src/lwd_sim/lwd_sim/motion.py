"""The building blocks of the scripted operator's plans: scene snapshot, arm goal, phase, plan.

A plan is a list of phases (approach, descend, close, raise, ...). Each phase turns a ``Scene``
snapshot (tool poses, object poses, contacts) into one ``ArmGoal`` per arm: a tool-point
position, a gripper orientation and a gripper opening. The helpers below express the common
goals: a top-down-ish grasp, staying put, and carrying a held object by its measured position;
``RightPick`` combines them into the right arm's pick of an object from the table, which the
pick-and-place and hand-over plans all start with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lwd_sim.kinematics import rotation
from lwd_sim.tasks import LEFT_GRIPPER_FINGERS, RIGHT_GRIPPER_FINGERS, ContactSet

OPEN = 1.0
CLOSED = 0.0
GRASP_FLOOR = 0.022
"""Lowest tool-point height [m] for a grasp: the fingertips reach about 2 cm below it."""
PICK_PITCH = np.deg2rad(60.0)
"""Downward pitch of the gripper when picking from the table (as in ACT's scripted policies)."""
CARRY_HEIGHT = 0.14
"""Height [m] a picked object is raised to before it travels, above every cube and the bin walls."""
BASE_ROTATION = {"left": np.eye(3), "right": rotation("z", np.pi)}
"""Gripper orientation with the fingers level and pointing at the other arm."""
LEFT_FINGERS = LEFT_GRIPPER_FINGERS
RIGHT_FINGERS = RIGHT_GRIPPER_FINGERS


@dataclass(frozen=True)
class Scene:
    """What the operator sees at one step (privileged simulator ground truth).

    ``tools`` are the measured tool poses; ``commanded`` the tool poses of the joint command being
    sent (they differ by servo lag and gravity sag). Goals that mean "stay put" use the commanded
    pose so that a phase change never makes the command jump.
    """

    tools: dict[str, tuple[np.ndarray, np.ndarray]]
    commanded: dict[str, tuple[np.ndarray, np.ndarray]]
    objects: dict[str, np.ndarray]
    contacts: ContactSet
    stage: int

    def touching(self, geom: str, others: tuple[str, ...]) -> bool:
        """True when ``geom`` touches any geom in ``others``."""
        return any((geom, other) in self.contacts or (other, geom) in self.contacts for other in others)

    def position(self, name: str) -> np.ndarray:
        """World position of a task object."""
        return self.objects[name][:3]

    def axis(self, name: str) -> np.ndarray:
        """The object's own x axis in the world, signed to point toward +x (the right arm)."""
        w, x, y, z = self.objects[name][3:]
        axis = np.array([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)])
        return axis if axis[0] >= 0 else -axis

    def yaw(self, name: str, symmetry: float) -> float:
        """Object yaw folded into (-symmetry/2, symmetry/2] (90 deg for a cube, 180 deg for a bar)."""
        axis = self.axis(name)
        angle = float(np.arctan2(axis[1], axis[0]))
        return (angle + symmetry / 2) % symmetry - symmetry / 2


@dataclass(frozen=True)
class ArmGoal:
    """Target for one arm: tool position [m], gripper orientation (3x3), gripper opening (0..1)."""

    position: np.ndarray
    rotation: np.ndarray
    gripper: float


Goals = dict[str, ArmGoal]
GoalFn = Callable[[Scene, Scene], Goals]
"""(scene now, scene at phase entry) -> goal per arm."""
ArmGoalFn = Callable[[Scene, Scene], ArmGoal]
"""(scene now, scene at phase entry) -> goal of one arm."""


@dataclass(frozen=True)
class Phase:
    """One step of a plan; it is reached when every arm is within tolerance for ``dwell`` steps.

    A ``final`` phase ends the plan when reached (a plan may hold alternative branches).
    """

    name: str
    subgoal: str
    goals: GoalFn
    requires: Callable[[Scene], bool] | None = None
    tolerance: float = 0.01
    dwell: int = 0
    max_linear: float = 0.01
    timeout: int = 150
    final: bool = False


@dataclass(frozen=True)
class Plan:
    """A task's phases and the rule that picks where to start from a given scene."""

    task: str
    phases: tuple[Phase, ...]
    infer: Callable[[Scene], int]
    target: str = ""
    """The object the episode's instruction names, for a task with targets."""

    def index(self, name: str) -> int:
        """Position of the phase called ``name``."""
        return [phase.name for phase in self.phases].index(name)


def align(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Smallest rotation (3x3) turning unit vector ``current`` onto unit vector ``target``."""
    axis = np.cross(current, target)
    sine, cosine = float(np.linalg.norm(axis)), float(np.dot(current, target))
    if sine < 1e-9:
        return np.eye(3)
    k = axis / sine
    skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    angle = np.arctan2(sine, cosine)
    return np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


def pick_rotation(side: str, yaw: float) -> np.ndarray:
    """Gripper orientation for a top-down-ish grasp, turned by ``yaw`` about the world z axis."""
    return rotation("z", yaw) @ BASE_ROTATION[side] @ rotation("y", PICK_PITCH)


def above(position: np.ndarray, height: float) -> np.ndarray:
    """Grasp target ``height`` above an object's centre, never below GRASP_FLOOR."""
    return np.array([position[0], position[1], max(position[2] + height, GRASP_FLOOR)])


def hold(scene: Scene, side: str, anchor: Scene, gripper: float) -> ArmGoal:
    """Stay where the arm was when the phase started."""
    position, orientation = anchor.commanded[side]
    return ArmGoal(position, orientation, gripper)


def carry(scene: Scene, side: str, anchor: Scene, obj: str, target: np.ndarray) -> ArmGoal:
    """Move a held object to ``target`` by moving the tool by the object's position error."""
    position, _ = scene.tools[side]
    return ArmGoal(position + (target - scene.position(obj)), anchor.commanded[side][1], CLOSED)


def grippers(right: float, left: float) -> GoalFn:
    """Both arms stay where they were at phase entry and set their grippers (a grip, a release, a swap)."""

    def goals(scene: Scene, anchor: Scene) -> Goals:
        return {"right": hold(scene, "right", anchor, right), "left": hold(scene, "left", anchor, left)}

    return goals


@dataclass(frozen=True)
class RightPick:
    """The right arm's pick of ``body`` from the table: grasp above it, close, raise it to CARRY_HEIGHT.

    ``left`` is the left arm's goal meanwhile (waiting at the meeting point, or staying put), so
    every plan that picks with the right arm shares one script and differs only in its left arm.
    """

    body: str
    left: ArmGoalFn

    def grasp(self, height: float) -> GoalFn:
        """Open gripper ``height`` above the object, turned to its yaw (a cube's 90 deg symmetry)."""

        def goals(scene: Scene, anchor: Scene) -> Goals:
            orientation = pick_rotation("right", scene.yaw(self.body, np.pi / 2))
            right = ArmGoal(above(scene.position(self.body), height), orientation, OPEN)
            return {"right": right, "left": self.left(scene, anchor)}

        return goals

    def close(self, scene: Scene, anchor: Scene) -> Goals:
        """The right gripper closes where it stands."""
        return {"right": hold(scene, "right", anchor, CLOSED), "left": self.left(scene, anchor)}

    def raise_(self, scene: Scene, anchor: Scene) -> Goals:
        """The held object goes straight up from where it was at phase entry to CARRY_HEIGHT."""
        start = anchor.position(self.body)
        target = np.array([start[0], start[1], CARRY_HEIGHT])
        return {"right": carry(scene, "right", anchor, self.body, target), "left": self.left(scene, anchor)}

"""End-effector waypoint plans for the scripted operator, replanned from the scene's current state.

A plan is a list of phases (approach, descend, close, raise, meet, hand over / insert...). Each
phase turns a ``Scene`` snapshot (tool poses, object poses, contacts) into one ``ArmGoal`` per
arm: a tool-point position, a gripper orientation and a gripper opening. Targets are recomputed
every step from live object poses, and while an arm holds an object the goal is expressed for the
*object* and converted to a tool goal through the measured tool-object offset, so grasp offsets
do not matter. ``Plan.infer`` picks the phase to start from in any state (a reset, or wherever a
policy left the robot), which is what makes live takeovers possible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lwd_sim.kinematics import rotation
from lwd_sim.tasks import LEFT_FINGER, RIGHT_FINGER, SOCKET_WALLS, ContactSet

OPEN = 1.0
CLOSED = 0.0
GRASP_FLOOR = 0.022
"""Lowest tool-point height [m] for a grasp: the fingertips reach about 2 cm below it."""
PICK_PITCH = np.deg2rad(60.0)
"""Downward pitch of the gripper when picking from the table (as in ACT's scripted policies)."""
LEFT_SIDE_X = -0.05
"""A cube left of this x [m] (pushed there by a policy) is out of the right arm's reach: the left
arm picks it up itself, which meets the task's success condition (left gripper holds it lifted)."""
BASE_ROTATION = {"left": np.eye(3), "right": rotation("z", np.pi)}
"""Gripper orientation with the fingers level and pointing at the other arm."""
LEFT_FINGERS = (LEFT_FINGER, "vx300s_left/10_right_gripper_finger")
RIGHT_FINGERS = (RIGHT_FINGER, "vx300s_right/10_left_gripper_finger")


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


def _cube_plan() -> Plan:
    # One motion script, read top to bottom as the operator performs it; splitting it would scatter the waypoints.
    meet = np.array([0.0, 0.5, 0.22])
    left_meet = rotation("x", np.pi / 2)
    left_wait = ArmGoal(meet + np.array([-0.16, 0.0, 0.0]), left_meet, OPEN)

    def right_holds(scene: Scene) -> bool:
        return scene.touching("red_box", RIGHT_FINGERS)

    def left_holds(scene: Scene) -> bool:
        return scene.touching("red_box", LEFT_FINGERS)

    def lifted(scene: Scene) -> bool:
        return not scene.touching("red_box", ("table",))

    def approach(scene: Scene, anchor: Scene) -> Goals:
        cube = scene.position("box")
        grasp = pick_rotation("right", scene.yaw("box", np.pi / 2))
        return {"right": ArmGoal(above(cube, 0.07), grasp, OPEN), "left": left_wait}

    def descend(scene: Scene, anchor: Scene) -> Goals:
        cube = scene.position("box")
        grasp = pick_rotation("right", scene.yaw("box", np.pi / 2))
        return {"right": ArmGoal(above(cube, 0.002), grasp, OPEN), "left": left_wait}

    def close(scene: Scene, anchor: Scene) -> Goals:
        return {"right": hold(scene, "right", anchor, CLOSED), "left": left_wait}

    def raise_(scene: Scene, anchor: Scene) -> Goals:
        start = anchor.position("box")
        return {"right": carry(scene, "right", anchor, "box", np.array([start[0], start[1], 0.14])), "left": left_wait}

    def to_meet(scene: Scene, anchor: Scene) -> Goals:
        return {"right": carry(scene, "right", anchor, "box", meet), "left": left_wait}

    def reach(scene: Scene, anchor: Scene) -> Goals:
        cube = scene.position("box")
        return {
            "right": carry(scene, "right", anchor, "box", meet),
            "left": ArmGoal(cube + np.array([-0.012, 0.0, 0.0]), left_meet, OPEN),
        }

    def both_closed(scene: Scene, anchor: Scene) -> Goals:
        return {"right": hold(scene, "right", anchor, CLOSED), "left": hold(scene, "left", anchor, CLOSED)}

    def right_open(scene: Scene, anchor: Scene) -> Goals:
        return {"right": hold(scene, "right", anchor, OPEN), "left": hold(scene, "left", anchor, CLOSED)}

    def retreat(scene: Scene, anchor: Scene) -> Goals:
        right_position, right_rotation = anchor.commanded["right"]
        left_position, left_rotation = anchor.commanded["left"]
        return {
            "right": ArmGoal(right_position + np.array([0.08, 0.0, 0.04]), right_rotation, OPEN),
            "left": ArmGoal(left_position + np.array([-0.04, 0.0, 0.0]), left_rotation, CLOSED),
        }

    def left_grasp(height: float, gripper: float) -> GoalFn:
        def goals(scene: Scene, anchor: Scene) -> Goals:
            cube = scene.position("box")
            grasp = pick_rotation("left", scene.yaw("box", np.pi / 2))
            return {"right": hold(scene, "right", anchor, OPEN), "left": ArmGoal(above(cube, height), grasp, gripper)}

        return goals

    def left_close(scene: Scene, anchor: Scene) -> Goals:
        return {"right": hold(scene, "right", anchor, OPEN), "left": hold(scene, "left", anchor, CLOSED)}

    def left_raise(scene: Scene, anchor: Scene) -> Goals:
        return {"right": hold(scene, "right", anchor, OPEN), "left": carry(scene, "left", anchor, "box", meet)}

    phases = (
        Phase("approach", "grasp", approach, tolerance=0.015),
        Phase("descend", "grasp", descend, tolerance=0.008, max_linear=0.006),
        Phase("close", "grasp", close, dwell=12, tolerance=0.02),
        Phase("raise", "grasp", raise_, requires=right_holds, tolerance=0.015),
        Phase("to_meet", "grasp", to_meet, requires=right_holds, tolerance=0.01),
        Phase("reach", "handover", reach, requires=right_holds, tolerance=0.008, max_linear=0.006),
        Phase("left_close", "handover", both_closed, requires=right_holds, dwell=12, tolerance=0.02),
        Phase("right_open", "handover", right_open, requires=left_holds, dwell=12, tolerance=0.02),
        Phase("retreat", "handover", retreat, requires=left_holds, tolerance=0.02, final=True),
        Phase("left_approach", "grasp", left_grasp(0.07, OPEN), tolerance=0.015),
        Phase("left_descend", "grasp", left_grasp(0.002, OPEN), tolerance=0.008, max_linear=0.006),
        Phase("left_grip", "grasp", left_close, dwell=12, tolerance=0.02),
        Phase("left_raise", "grasp", left_raise, requires=left_holds, tolerance=0.015, final=True),
    )

    def infer(scene: Scene) -> int:
        names = [phase.name for phase in phases]
        if left_holds(scene) and lifted(scene):
            return names.index("right_open" if right_holds(scene) else "retreat")
        if right_holds(scene) and lifted(scene):
            return names.index("to_meet")
        if scene.position("box")[0] < LEFT_SIDE_X:
            return names.index("left_approach")
        return names.index("approach")

    return Plan("transfer_cube", phases, infer)


def _insertion_plan() -> Plan:
    # One motion script, read top to bottom as the operator performs it; splitting it would scatter the waypoints.
    meet = np.array([0.0, 0.5, 0.2])
    socket_goal = meet + np.array([-0.05, 0.0, 0.0])

    def both_hold(scene: Scene) -> bool:
        return scene.touching("red_peg", RIGHT_FINGERS) and any(
            scene.touching(wall, LEFT_FINGERS) for wall in SOCKET_WALLS
        )

    def lifted(scene: Scene) -> bool:
        return not scene.touching("red_peg", ("table",)) and not any(
            scene.touching(wall, ("table",)) for wall in SOCKET_WALLS
        )

    def grasps(scene: Scene, height: float) -> Goals:
        peg, socket = scene.position("peg"), scene.position("socket")
        return {
            "right": ArmGoal(above(peg, height), pick_rotation("right", scene.yaw("peg", np.pi)), OPEN),
            "left": ArmGoal(above(socket, height), pick_rotation("left", scene.yaw("socket", np.pi)), OPEN),
        }

    def close(scene: Scene, anchor: Scene) -> Goals:
        return {"right": hold(scene, "right", anchor, CLOSED), "left": hold(scene, "left", anchor, CLOSED)}

    def raise_(scene: Scene, anchor: Scene) -> Goals:
        peg, socket = anchor.position("peg"), anchor.position("socket")
        return {
            "right": carry(scene, "right", anchor, "peg", np.array([peg[0], peg[1], 0.12])),
            "left": carry(scene, "left", anchor, "socket", np.array([socket[0], socket[1], 0.12])),
        }

    def to_meet(scene: Scene, anchor: Scene) -> Goals:
        return {
            "right": carry(scene, "right", anchor, "peg", meet + np.array([0.14, 0.0, 0.0])),
            "left": carry(scene, "left", anchor, "socket", socket_goal),
        }

    def line_up(depth: float) -> GoalFn:
        def goals(scene: Scene, anchor: Scene) -> Goals:
            target = scene.position("socket") + depth * scene.axis("socket")
            peg = carry(scene, "right", anchor, "peg", target)
            turn = align(scene.axis("peg"), scene.axis("socket"))
            return {
                "right": ArmGoal(peg.position, turn @ anchor.commanded["right"][1], CLOSED),
                "left": carry(scene, "left", anchor, "socket", socket_goal),
            }

        return goals

    phases = (
        Phase("approach", "grasp", lambda scene, anchor: grasps(scene, 0.07), tolerance=0.015),
        Phase("descend", "grasp", lambda scene, anchor: grasps(scene, 0.002), tolerance=0.008, max_linear=0.006),
        Phase("close", "grasp", close, dwell=15, tolerance=0.02),
        Phase("raise", "grasp", raise_, requires=both_hold, tolerance=0.015),
        Phase("to_meet", "insert", to_meet, requires=both_hold, tolerance=0.01),
        Phase("align", "insert", line_up(0.15), requires=both_hold, tolerance=0.005, max_linear=0.005),
        Phase("insert", "insert", line_up(0.05), requires=both_hold, tolerance=0.004, max_linear=0.004),
    )

    def infer(scene: Scene) -> int:
        if both_hold(scene) and lifted(scene):
            return [phase.name for phase in phases].index("to_meet")
        return 0

    return Plan("insertion", phases, infer)


PLANS: dict[str, Callable[[], Plan]] = {"transfer_cube": _cube_plan, "insertion": _insertion_plan}
"""Plan factory per task."""


def plan_for(task: str) -> Plan:
    """The plan of ``task``; ValueError listing the planned tasks if there is none."""
    if task not in PLANS:
        raise ValueError(f"no scripted plan for task {task!r}; planned tasks are {sorted(PLANS)}")
    return PLANS[task]()

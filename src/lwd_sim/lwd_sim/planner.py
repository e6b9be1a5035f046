"""End-effector waypoint plans for the scripted operator, replanned from the scene's current state.

A plan is a list of phases (approach, descend, close, raise, meet, hand over / insert...). Each
phase turns a ``Scene`` snapshot (tool poses, object poses, contacts) into one ``ArmGoal`` per
arm: a tool-point position, a gripper orientation and a gripper opening (the building blocks are
in :mod:`lwd_sim.motion`, the cube hand-over in :mod:`lwd_sim.handover`, the pick-and-place
plans in :mod:`lwd_sim.placing`, the long ``tidy_cubes`` plan in :mod:`lwd_sim.tidying`). Targets
are recomputed every step from live object poses, and while an arm holds an object the goal is
expressed for the *object* and converted to a tool goal through the measured tool-object offset,
so grasp offsets do not matter. ``Plan.infer`` picks the phase to start from in any state (a
reset, or wherever a policy left the robot), which is what makes live takeovers possible.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lwd_sim.handover import LEFT_MEET, LEFT_WAIT, MEET, Handover
from lwd_sim.motion import (
    CLOSED,
    LEFT_FINGERS,
    OPEN,
    RIGHT_FINGERS,
    ArmGoal,
    GoalFn,
    Goals,
    Phase,
    Plan,
    Scene,
    above,
    align,
    carry,
    grippers,
    hold,
    pick_rotation,
)
from lwd_sim.placing import cube_in_bin_plan, stack_cube_plan
from lwd_sim.scenes import cube_body
from lwd_sim.tasks import SOCKET_WALLS
from lwd_sim.tidying import tidy_cubes_plan

LEFT_SIDE_X = -0.05
"""A cube left of this x [m] (pushed there by a policy) is out of the right arm's reach: the left
arm picks it up itself, which meets the task's success condition (left gripper holds it lifted)."""


def _cube_plan(task: str = "transfer_cube", body: str = "box", geom: str = "red_box", target: str = "") -> Plan:
    """Right arm picks the cube ``body`` (collision geom ``geom``) and hands it to the left arm."""
    # One motion script, read top to bottom as the operator performs it; splitting it would scatter the waypoints.
    handover = Handover(body, MEET, LEFT_MEET, LEFT_WAIT)
    pick = handover.pick

    def right_holds(scene: Scene) -> bool:
        return scene.touching(geom, RIGHT_FINGERS)

    def left_holds(scene: Scene) -> bool:
        return scene.touching(geom, LEFT_FINGERS)

    def lifted(scene: Scene) -> bool:
        return not scene.touching(geom, ("table",))

    def retreat(scene: Scene, anchor: Scene) -> Goals:
        right_position, right_rotation = anchor.commanded["right"]
        left_position, left_rotation = anchor.commanded["left"]
        return {
            "right": ArmGoal(right_position + np.array([0.08, 0.0, 0.04]), right_rotation, OPEN),
            "left": ArmGoal(left_position + np.array([-0.04, 0.0, 0.0]), left_rotation, CLOSED),
        }

    def left_grasp(height: float, gripper: float) -> GoalFn:
        def goals(scene: Scene, anchor: Scene) -> Goals:
            cube = scene.position(body)
            grasp = pick_rotation("left", scene.yaw(body, np.pi / 2))
            return {"right": hold(scene, "right", anchor, OPEN), "left": ArmGoal(above(cube, height), grasp, gripper)}

        return goals

    def left_raise(scene: Scene, anchor: Scene) -> Goals:
        return {"right": hold(scene, "right", anchor, OPEN), "left": carry(scene, "left", anchor, body, handover.meet)}

    phases = (
        Phase("approach", "grasp", pick.grasp(0.07), tolerance=0.015),
        Phase("descend", "grasp", pick.grasp(0.002), tolerance=0.008, max_linear=0.006),
        Phase("close", "grasp", pick.close, dwell=12, tolerance=0.02),
        Phase("raise", "grasp", pick.raise_, requires=right_holds, tolerance=0.015),
        Phase("to_meet", "grasp", handover.to_meet, requires=right_holds, tolerance=0.01),
        Phase("reach", "handover", handover.reach, requires=right_holds, tolerance=0.008, max_linear=0.006),
        Phase("left_close", "handover", grippers(CLOSED, CLOSED), requires=right_holds, dwell=12, tolerance=0.02),
        Phase("right_open", "handover", grippers(OPEN, CLOSED), requires=left_holds, dwell=12, tolerance=0.02),
        Phase("retreat", "handover", retreat, requires=left_holds, tolerance=0.02, final=True),
        Phase("left_approach", "grasp", left_grasp(0.07, OPEN), tolerance=0.015),
        Phase("left_descend", "grasp", left_grasp(0.002, OPEN), tolerance=0.008, max_linear=0.006),
        Phase("left_grip", "grasp", grippers(OPEN, CLOSED), dwell=12, tolerance=0.02),
        Phase("left_raise", "grasp", left_raise, requires=left_holds, tolerance=0.015, final=True),
    )

    def infer(scene: Scene) -> int:
        names = [phase.name for phase in phases]
        if left_holds(scene) and lifted(scene):
            return names.index("right_open" if right_holds(scene) else "retreat")
        if right_holds(scene) and lifted(scene):
            return names.index("to_meet")
        if scene.position(body)[0] < LEFT_SIDE_X:
            return names.index("left_approach")
        return names.index("approach")

    return Plan(task, phases, infer, target)


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
        Phase("close", "grasp", grippers(CLOSED, CLOSED), dwell=15, tolerance=0.02),
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


PLANS: dict[str, Callable[[str], Plan]] = {
    "transfer_cube": lambda target: _cube_plan(),
    "insertion": lambda target: _insertion_plan(),
    "pick_colour": lambda target: _cube_plan("pick_colour", cube_body(target), cube_body(target), target),
    "stack_cube": lambda target: stack_cube_plan(),
    "cube_in_bin": lambda target: cube_in_bin_plan(),
    "tidy_cubes": lambda target: tidy_cubes_plan(),
}
"""Plan factory per task, given the episode's target ("" for a task without targets)."""


def plan_for(task: str, target: str = "") -> Plan:
    """The plan of ``task`` for ``target``; ValueError listing the planned tasks if there is none."""
    if task not in PLANS:
        raise ValueError(f"no scripted plan for task {task!r}; planned tasks are {sorted(PLANS)}")
    return PLANS[task](target)

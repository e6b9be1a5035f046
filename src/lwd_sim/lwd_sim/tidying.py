"""The long-horizon ``tidy_cubes`` plan: every cube is handed from the right arm to the left arm and binned.

The cubes start on the right half of the table and the bin stands on the left half, out of the
right arm's reach, so each cube takes three sub-goals in sequence: the right arm lifts it, hands
it to the left arm at the meeting point, and the left arm drops it into its own slot of the bin
and comes back. ``infer`` resumes from any state: the first cube not yet in the bin is the one to
handle, from the drop if the left gripper holds it in the air, from the meeting point if the
right gripper does, from its approach otherwise. A cube counts as done once it is inside the bin's
outline, even while it still bounces, so the right arm never reaches for it there.
"""

from __future__ import annotations

import numpy as np

from lwd_sim.handover import LEFT_MEET, LEFT_WAIT, MEET, Handover
from lwd_sim.motion import (
    CLOSED,
    LEFT_FINGERS,
    OPEN,
    RIGHT_FINGERS,
    ArmGoal,
    Goals,
    Phase,
    Plan,
    Scene,
    carry,
    grippers,
    hold,
)
from lwd_sim.scenes import BIN_FLOOR_HALF, cube_body
from lwd_sim.tasks import TIDY_COLOURS

LEFT_LEVEL = np.eye(3)
"""Left gripper orientation over the bin: the hand-over grip rolled 90 deg about the gripper's own
axis, so the fingers are level and the cube falls straight down between them when they open (in
the hand-over orientation it would rest on the lower finger)."""
DROP_HEIGHT = 0.1
"""Cube centre above the bin's base [m] when the left gripper opens: the fingers and the wrist clear
the walls, and the cube falls about 7 cm onto the floor."""
SLOTS = {
    "red": (0.035, -0.065),
    "green": (-0.035, -0.065),
    "blue": (0.035, 0.0),
    "yellow": (-0.035, 0.0),
    "purple": (0.035, 0.065),
}
"""(x, y) offset [m] of each cube's slot in the bin, so no cube lands on another."""


def _in_air(scene: Scene, body: str) -> bool:
    return not scene.touching(body, ("table",))


def _over_bin(scene: Scene, body: str) -> bool:
    """The cube is inside the bin's outline (resting, bouncing or falling into it): nothing left to do with it."""
    offset = np.abs(scene.position(body)[:2] - scene.position("bin")[:2])
    return bool(np.all(offset <= BIN_FLOOR_HALF[:2])) and scene.position(body)[2] < DROP_HEIGHT


def _cube_phases(colour: str, final: bool) -> list[Phase]:
    # One motion script per cube, read top to bottom as the operator performs it.
    body = cube_body(colour)
    slot = np.array([*SLOTS[colour], DROP_HEIGHT])
    handover = Handover(body, MEET, LEFT_MEET, LEFT_WAIT)
    pick = handover.pick

    def right_holds(scene: Scene) -> bool:
        return scene.touching(body, RIGHT_FINGERS)

    def left_holds(scene: Scene) -> bool:
        return scene.touching(body, LEFT_FINGERS)

    def right_away(scene: Scene, anchor: Scene) -> Goals:
        position, orientation = anchor.commanded["right"]
        return {
            "right": ArmGoal(position + np.array([0.08, 0.0, 0.04]), orientation, OPEN),
            "left": hold(scene, "left", anchor, CLOSED),
        }

    def to_bin(scene: Scene, anchor: Scene) -> Goals:
        target = scene.position("bin") + slot
        position = carry(scene, "left", anchor, body, target).position
        return {"right": hold(scene, "right", anchor, OPEN), "left": ArmGoal(position, LEFT_LEVEL, CLOSED)}

    def left_back(scene: Scene, anchor: Scene) -> Goals:
        return {"right": hold(scene, "right", anchor, OPEN), "left": LEFT_WAIT}

    return [
        Phase(f"approach_{colour}", f"grasp_{colour}", pick.grasp(0.07), tolerance=0.015),
        Phase(f"descend_{colour}", f"grasp_{colour}", pick.grasp(0.002), tolerance=0.008, max_linear=0.006),
        Phase(f"close_{colour}", f"grasp_{colour}", pick.close, dwell=12, tolerance=0.02),
        Phase(f"raise_{colour}", f"grasp_{colour}", pick.raise_, requires=right_holds, tolerance=0.015),
        Phase(f"to_meet_{colour}", f"grasp_{colour}", handover.to_meet, requires=right_holds, tolerance=0.01),
        Phase(
            f"reach_{colour}",
            f"handover_{colour}",
            handover.reach,
            requires=right_holds,
            tolerance=0.008,
            max_linear=0.006,
        ),
        Phase(f"left_close_{colour}", f"handover_{colour}", grippers(CLOSED, CLOSED), requires=right_holds, dwell=12),
        Phase(f"right_open_{colour}", f"handover_{colour}", grippers(OPEN, CLOSED), requires=left_holds, dwell=12),
        Phase(f"right_away_{colour}", f"handover_{colour}", right_away, requires=left_holds, tolerance=0.02),
        Phase(f"to_bin_{colour}", f"bin_{colour}", to_bin, requires=left_holds, tolerance=0.01),
        Phase(f"drop_{colour}", f"bin_{colour}", grippers(OPEN, OPEN), dwell=10, tolerance=0.02),
        Phase(f"left_back_{colour}", f"bin_{colour}", left_back, tolerance=0.02, final=final),
    ]


def tidy_cubes_plan() -> Plan:
    """Hand over and bin the cubes of :data:`lwd_sim.tasks.TIDY_COLOURS` in turn; see the module docstring."""
    phases = tuple(
        phase
        for number, colour in enumerate(TIDY_COLOURS)
        for phase in _cube_phases(colour, final=number == len(TIDY_COLOURS) - 1)
    )
    names = [phase.name for phase in phases]

    def infer(scene: Scene) -> int:
        for colour in TIDY_COLOURS:
            body = cube_body(colour)
            left, right = scene.touching(body, LEFT_FINGERS), scene.touching(body, RIGHT_FINGERS)
            if _over_bin(scene, body):
                if left:
                    return names.index(f"drop_{colour}")
                continue
            if left and _in_air(scene, body):
                return names.index(f"right_open_{colour}" if right else f"to_bin_{colour}")
            if right and _in_air(scene, body):
                return names.index(f"to_meet_{colour}")
            return names.index(f"approach_{colour}")
        return len(phases) - 1

    return Plan("tidy_cubes", phases, infer)

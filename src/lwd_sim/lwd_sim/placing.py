"""Pick-and-place plans of the right arm: stack a cube, put a cube in the bin.

Every object to move is one :class:`Placement`: the right arm approaches it, descends, closes,
raises it, carries it above its destination, lowers it there, opens and retreats upward; the
next placement starts from that retreat. The left arm stays where it is. ``infer`` resumes from
any state: the first placement whose object is not yet placed is the one to do, from the carry
if the right gripper already holds it in the air, from the approach otherwise; an object placed
but still in the fingers resumes at the release.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lwd_sim.motion import (
    OPEN,
    RIGHT_FINGERS,
    ArmGoal,
    GoalFn,
    Goals,
    Phase,
    Plan,
    RightPick,
    Scene,
    carry,
    grippers,
    hold,
)
from lwd_sim.scenes import BIN_FLOOR_HALF, BIN_GEOMS, CUBE_HALF

HOVER = 0.05
"""A held object stops this far [m] above its destination before it is lowered onto it."""
RETREAT = np.array([0.03, 0.0, 0.08])
"""Tool motion [m] after letting go: up and back toward the right arm's base."""
PRESS = 0.003
"""A placed object is lowered to this far [m] below resting on its support: the support stops it, and
the lower phase (6 mm tolerance) ends with it touching the support while still held (the stage
reward's "on the receptacle" sub-goal); then it is let go."""
BIN_PLACE_HEIGHT = 2 * BIN_FLOOR_HALF[2] + CUBE_HALF - PRESS
"""Cube centre above the bin's base [m] at the end of the lowering: on the floor."""


@dataclass(frozen=True)
class Placement:
    """One object to move: its body (and geom) name, where its centre goes, and when it is there.

    ``placed`` should hold once the object rests on its destination, whether or not the fingers
    still touch it.
    """

    body: str
    destination: Callable[[Scene], np.ndarray]
    placed: Callable[[Scene], bool]


def _holds(scene: Scene, body: str) -> bool:
    return scene.touching(body, RIGHT_FINGERS)


def _lifted(scene: Scene, body: str) -> bool:
    return _holds(scene, body) and not scene.touching(body, ("table",))


def _phases(placement: Placement, final: bool) -> list[Phase]:
    body = placement.body

    def park(scene: Scene, anchor: Scene) -> ArmGoal:
        return hold(scene, "left", anchor, OPEN)

    pick = RightPick(body, park)

    def to(height: float) -> GoalFn:
        def goals(scene: Scene, anchor: Scene) -> Goals:
            target = placement.destination(scene) + np.array([0.0, 0.0, height])
            return {"right": carry(scene, "right", anchor, body, target), "left": park(scene, anchor)}

        return goals

    def retreat(scene: Scene, anchor: Scene) -> Goals:
        position, rotation = anchor.commanded["right"]
        return {"right": ArmGoal(position + RETREAT, rotation, OPEN), "left": park(scene, anchor)}

    def holds(scene: Scene) -> bool:
        return _holds(scene, body)

    return [
        Phase(f"approach_{body}", f"grasp_{body}", pick.grasp(0.07), tolerance=0.015),
        Phase(f"descend_{body}", f"grasp_{body}", pick.grasp(0.002), tolerance=0.008, max_linear=0.006),
        Phase(f"close_{body}", f"grasp_{body}", pick.close, dwell=12, tolerance=0.02),
        Phase(f"raise_{body}", f"grasp_{body}", pick.raise_, requires=holds, tolerance=0.015),
        Phase(f"transport_{body}", f"place_{body}", to(HOVER), requires=holds, tolerance=0.01),
        Phase(f"lower_{body}", f"place_{body}", to(0.0), requires=holds, tolerance=0.006, max_linear=0.004),
        Phase(f"release_{body}", f"place_{body}", grippers(OPEN, OPEN), dwell=10, tolerance=0.02),
        Phase(f"retreat_{body}", f"place_{body}", retreat, tolerance=0.02, final=final),
    ]


def pick_and_place_plan(task: str, placements: tuple[Placement, ...]) -> Plan:
    """A plan that moves each object of ``placements`` in turn; see the module docstring."""
    phases = tuple(
        phase
        for number, placement in enumerate(placements)
        for phase in _phases(placement, final=number == len(placements) - 1)
    )
    names = [phase.name for phase in phases]

    def infer(scene: Scene) -> int:
        for placement in placements:
            body = placement.body
            if placement.placed(scene):
                if _holds(scene, body):
                    return names.index(f"release_{body}")
                continue
            if _lifted(scene, body):
                return names.index(f"transport_{body}")
            return names.index(f"approach_{body}")
        return len(phases) - 1

    return Plan(task, phases, infer)


def _resting_on(body: str, receptacle: tuple[str, ...]) -> Callable[[Scene], bool]:
    def placed(scene: Scene) -> bool:
        return any(scene.touching(body, (part,)) for part in receptacle) and not scene.touching(body, ("table",))

    return placed


def _in_bin(offset_y: float) -> Callable[[Scene], np.ndarray]:
    def destination(scene: Scene) -> np.ndarray:
        return scene.position("bin") + np.array([0.0, offset_y, BIN_PLACE_HEIGHT])

    return destination


def stack_cube_plan() -> Plan:
    """Right arm puts the red cube on the blue cube, lowered onto it and let go."""

    def on_blue(scene: Scene) -> np.ndarray:
        return scene.position("blue_cube") + np.array([0.0, 0.0, 2 * CUBE_HALF - PRESS])

    return pick_and_place_plan("stack_cube", (Placement("red_cube", on_blue, _resting_on("red_cube", ("blue_cube",))),))


def cube_in_bin_plan() -> Plan:
    """Right arm lowers the red cube onto the middle of the bin's floor and lets go."""
    return pick_and_place_plan(
        "cube_in_bin", (Placement("red_cube", _in_bin(0.0), _resting_on("red_cube", BIN_GEOMS)),)
    )

"""The hand-over of a cube from the right gripper to the left, shared by the transfer-cube and tidy_cubes plans.

The right arm picks the cube from the table while the left arm waits beside the meeting point,
carries it to the meeting point, and the left gripper reaches around it; then both grippers close
and the right one opens (:func:`lwd_sim.motion.grippers`). :class:`Handover` holds the goals of
that motion for one cube; each plan keeps its own phases (names, tolerances, preconditions) and
what follows the swap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lwd_sim.kinematics import rotation
from lwd_sim.motion import OPEN, ArmGoal, Goals, RightPick, Scene, carry

MEET = np.array([0.0, 0.5, 0.22])
"""Where the right arm presents the cube to the left arm [m]."""
LEFT_MEET = rotation("x", np.pi / 2)
"""Left gripper orientation at the meeting point: fingers level, closing vertically on the cube."""
LEFT_WAIT = ArmGoal(MEET + np.array([-0.16, 0.0, 0.0]), LEFT_MEET, OPEN)
"""The left arm's goal while the right arm picks the cube: open, 16 cm short of the meeting point."""
LEFT_REACH = np.array([-0.012, 0.0, 0.0])
"""Left tool point relative to the presented cube's centre when it closes [m]."""


@dataclass(frozen=True)
class Handover:
    """Goals of handing cube ``body`` over at ``meet``, the left arm waiting at ``left_wait`` until it reaches.

    ``left_meet`` is the left gripper's orientation when it reaches for the cube.
    """

    body: str
    meet: np.ndarray
    left_meet: np.ndarray
    left_wait: ArmGoal

    @property
    def pick(self) -> RightPick:
        """The right arm's pick of the cube (grasp, close, raise) while the left arm waits."""
        return RightPick(self.body, self._wait)

    def _wait(self, scene: Scene, anchor: Scene) -> ArmGoal:
        return self.left_wait

    def to_meet(self, scene: Scene, anchor: Scene) -> Goals:
        """The right arm carries the raised cube to the meeting point; the left arm still waits."""
        return {"right": carry(scene, "right", anchor, self.body, self.meet), "left": self.left_wait}

    def reach(self, scene: Scene, anchor: Scene) -> Goals:
        """The right arm keeps the cube at the meeting point; the open left gripper moves around it."""
        left = ArmGoal(scene.position(self.body) + LEFT_REACH, self.left_meet, OPEN)
        return {"right": carry(scene, "right", anchor, self.body, self.meet), "left": left}

"""The two gym-aloha bimanual tasks: scene file, object sampling, stage reward, instructions.

Stage rewards follow gym-aloha's ``TransferCubeTask`` / ``InsertionTask`` exactly (0..4, 4 is
success); object poses are sampled with gym-aloha's own ranges from the episode seed.

Each task has two instruction sets (:data:`INSTRUCTION_SETS`): the ``trained`` paraphrases, which
demonstrations and fleet episodes use, and ``held_out`` paraphrases that no recorded episode ever
carries, so an evaluation on them measures whether the policy follows instructions it never saw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gym_aloha.constants import ASSETS_DIR
from gym_aloha.utils import sample_box_pose, sample_insertion_pose

LEFT_FINGER = "vx300s_left/10_left_gripper_finger"
RIGHT_FINGER = "vx300s_right/10_right_gripper_finger"
SOCKET_WALLS = ("socket-1", "socket-2", "socket-3", "socket-4")

ContactSet = frozenset[tuple[str, str]]

INSTRUCTION_SETS = ("trained", "held_out")
"""trained: the paraphrases episodes are recorded with; held_out: paraphrases only evaluations use."""


def _touch(contacts: ContactSet, a: str, b: str) -> bool:
    return (a, b) in contacts or (b, a) in contacts


def transfer_cube_stage(contacts: ContactSet) -> int:
    """gym-aloha TransferCubeTask reward: 1 right touches, 2 lifted, 3 left touches, 4 left holds it lifted."""
    right = _touch(contacts, "red_box", RIGHT_FINGER)
    left = _touch(contacts, "red_box", LEFT_FINGER)
    table = _touch(contacts, "red_box", "table")
    stage = 0
    if right:
        stage = 1
    if right and not table:
        stage = 2
    if left:
        stage = 3
    if left and not table:
        stage = 4
    return stage


def insertion_stage(contacts: ContactSet) -> int:
    """gym-aloha InsertionTask reward: 1 both touch, 2 both lifted, 3 peg touches socket, 4 peg touches pin."""
    right = _touch(contacts, "red_peg", RIGHT_FINGER)
    left = any(_touch(contacts, wall, LEFT_FINGER) for wall in SOCKET_WALLS)
    peg_table = _touch(contacts, "red_peg", "table")
    socket_table = any(_touch(contacts, wall, "table") for wall in SOCKET_WALLS)
    peg_socket = any(_touch(contacts, "red_peg", wall) for wall in SOCKET_WALLS)
    stage = 0
    if left and right:
        stage = 1
    if left and right and not peg_table and not socket_table:
        stage = 2
    if peg_socket and not peg_table and not socket_table:
        stage = 3
    if _touch(contacts, "red_peg", "pin"):
        stage = 4
    return stage


def _cube_poses(seed: int) -> dict[str, np.ndarray]:
    return {"box": sample_box_pose(seed)}


def _insertion_poses(seed: int) -> dict[str, np.ndarray]:
    peg, socket = sample_insertion_pose(seed)
    return {"peg": peg, "socket": socket}


@dataclass(frozen=True)
class TaskSpec:
    """Everything task-specific the driver needs."""

    name: str
    scene: Path
    objects: tuple[str, ...]
    sample_poses: Callable[[int], dict[str, np.ndarray]]
    stage: Callable[[ContactSet], int]
    max_stage: int
    instructions: tuple[str, ...]
    """The trained paraphrases."""
    held_out_instructions: tuple[str, ...]
    """Paraphrases never used by a demonstration or fleet episode, for evaluation only."""

    def instruction_set(self, name: str) -> tuple[str, ...]:
        """The paraphrases of one of :data:`INSTRUCTION_SETS`."""
        if name not in INSTRUCTION_SETS:
            raise ValueError(f"unknown instruction set {name!r}; valid sets are {INSTRUCTION_SETS}")
        return self.instructions if name == "trained" else self.held_out_instructions


TASKS: dict[str, TaskSpec] = {
    "transfer_cube": TaskSpec(
        name="transfer_cube",
        scene=ASSETS_DIR / "bimanual_viperx_transfer_cube.xml",
        objects=("box",),
        sample_poses=_cube_poses,
        stage=transfer_cube_stage,
        max_stage=4,
        instructions=(
            "pick up the red cube with the right arm and hand it to the left arm",
            "transfer the red cube from the right gripper to the left gripper",
            "grab the cube on the right and pass it over to the left hand",
            "lift the red block with your right hand and give it to your left hand",
        ),
        held_out_instructions=(
            "hand the red box over from the right gripper to the left one",
            "use the right arm to pick up the red cube, then pass it across to the left arm",
        ),
    ),
    "insertion": TaskSpec(
        name="insertion",
        scene=ASSETS_DIR / "bimanual_viperx_insertion.xml",
        objects=("peg", "socket"),
        sample_poses=_insertion_poses,
        stage=insertion_stage,
        max_stage=4,
        instructions=(
            "pick up the red peg and the blue socket and insert the peg into the socket",
            "grab the socket with the left arm and the peg with the right arm, then push the peg in",
            "insert the red peg into the blue socket in mid-air",
            "lift both parts and slide the peg into the socket",
        ),
        held_out_instructions=(
            "hold the blue socket in the left gripper and push the red peg into it with the right gripper",
            "pick up both pieces and fit the red peg inside the blue socket",
        ),
    ),
}
"""The supported tasks, by name."""

"""The bimanual tasks: scene, object sampling, stage reward, instructions.

The two gym-aloha tasks (``transfer_cube``, ``insertion``) use gym-aloha's scene files, its pose
ranges and its stage rewards exactly (0..4, 4 is success). Our own tasks (``pick_colour``,
``stack_cube``, ``cube_in_bin`` and the long-horizon ``tidy_cubes``) use scenes built by
:mod:`lwd_sim.scenes` from the same robot and cube, and stage rewards that count sub-goals from
contacts, so partial progress is visible.

A task may name a *target* per episode (``TaskSpec.targets``): ``pick_colour`` draws the colour of
the cube to move from the seed, its instruction says which, and its stage reward follows only
that cube, so the same scene needs different actions for different instructions.

Each task has two instruction sets (:data:`INSTRUCTION_SETS`): the ``trained`` paraphrases, which
demonstrations and fleet episodes use, and ``held_out`` paraphrases that no recorded episode ever
carries, so an evaluation on them measures whether the policy follows instructions it never saw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
from gym_aloha.constants import ASSETS_DIR
from gym_aloha.utils import sample_box_pose, sample_insertion_pose

from lwd_sim.scenes import BIN_GEOMS, Area, bin_pose, cube_body, cube_pose, scene_xml, spaced_points

LEFT_FINGER = "vx300s_left/10_left_gripper_finger"
RIGHT_FINGER = "vx300s_right/10_right_gripper_finger"
RIGHT_GRIPPER_FINGERS = (RIGHT_FINGER, "vx300s_right/10_left_gripper_finger")
LEFT_GRIPPER_FINGERS = (LEFT_FINGER, "vx300s_left/10_right_gripper_finger")
ALL_FINGERS = (*LEFT_GRIPPER_FINGERS, *RIGHT_GRIPPER_FINGERS)
SOCKET_WALLS = ("socket-1", "socket-2", "socket-3", "socket-4")
PICK_COLOURS = ("red", "blue")
"""The cubes of ``pick_colour``; the instruction names one of them per episode."""
TIDY_COLOURS = ("red", "green", "blue", "yellow", "purple")
"""The cubes ``tidy_cubes`` hands over and bins, in the operator's order."""

ContactSet = frozenset[tuple[str, str]]

SHORT_HORIZON = 400
"""The step budget of a short task's scripted demonstration (``TaskSpec.horizon`` unless a task sets its own)."""

INSTRUCTION_SETS = ("trained", "held_out")
"""trained: the paraphrases episodes are recorded with; held_out: paraphrases only evaluations use."""


def _touch(contacts: ContactSet, a: str, b: str) -> bool:
    return (a, b) in contacts or (b, a) in contacts


def transfer_cube_stage(contacts: ContactSet) -> int:
    """gym-aloha TransferCubeTask reward: 1 right touches, 2 lifted, 3 left touches, 4 left holds it lifted."""
    return handover_stage(contacts, "red_box")


def handover_stage(contacts: ContactSet, geom: str) -> int:
    """The transfer-cube rule for the object ``geom``: 1 right touches, 2 lifted, 3 left touches, 4 left holds it up."""
    right = _touch(contacts, geom, RIGHT_FINGER)
    left = _touch(contacts, geom, LEFT_FINGER)
    table = _touch(contacts, geom, "table")
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


def place_stage(contacts: ContactSet, geom: str, receptacle: tuple[str, ...]) -> int:
    """Pick-and-place: 1 right gripper touches ``geom``, 2 lifted, 3 on the receptacle off the table, 4 left there.

    "Left there" means it touches a geom of ``receptacle`` and neither the table nor any finger.
    """
    held = any(_touch(contacts, geom, finger) for finger in RIGHT_GRIPPER_FINGERS)
    table = _touch(contacts, geom, "table")
    on = any(_touch(contacts, geom, part) for part in receptacle)
    free = not any(_touch(contacts, geom, finger) for finger in ALL_FINGERS)
    stage = 0
    if held:
        stage = 1
    if held and not table:
        stage = 2
    if on and not table:
        stage = 3
    if on and not table and free:
        stage = 4
    return stage


def pick_colour_stage(contacts: ContactSet, target: str) -> int:
    """The transfer-cube rule applied to the named cube only: moving the other cube earns nothing."""
    return handover_stage(contacts, cube_body(target))


def in_bin(contacts: ContactSet, geom: str) -> bool:
    """True when ``geom`` rests in the bin: it touches the bin and neither the table nor a finger."""
    return place_stage(contacts, geom, BIN_GEOMS) == 4


def tidy_stage(contacts: ContactSet) -> int:
    """Three sub-goals per cube: +3 for each cube resting in the bin; for the furthest cube still out,
    +1 while the right gripper holds it in the air, +2 while the left gripper does.

    Counting binned cubes (not their order) keeps the reward monotone over a successful episode:
    0, 1, 2, 3, ... 15 with five cubes.
    """
    placed, progress = 0, 0
    for cube in (cube_body(colour) for colour in TIDY_COLOURS):
        if in_bin(contacts, cube):
            placed += 1
            continue
        if _touch(contacts, cube, "table"):
            continue
        if any(_touch(contacts, cube, finger) for finger in LEFT_GRIPPER_FINGERS):
            progress = max(progress, 2)
        elif any(_touch(contacts, cube, finger) for finger in RIGHT_GRIPPER_FINGERS):
            progress = max(progress, 1)
    return 3 * placed + progress


def _untargeted(stage: Callable[[ContactSet], int]) -> Callable[[ContactSet, str], int]:
    """A stage rule that names no target, in the (contacts, target) signature of :class:`TaskSpec`."""
    return lambda contacts, target: stage(contacts)


def _cube_poses(seed: int) -> dict[str, np.ndarray]:
    return {"box": sample_box_pose(seed)}


def _insertion_poses(seed: int) -> dict[str, np.ndarray]:
    peg, socket = sample_insertion_pose(seed)
    return {"peg": peg, "socket": socket}


def _pick_colour_poses(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    area = Area(x=(0.0, 0.2), y=(0.4, 0.62))
    points = spaced_points(rng, [area] * len(PICK_COLOURS), spacing=0.1)
    return {cube_body(colour): cube_pose(xy) for colour, xy in zip(PICK_COLOURS, points, strict=True)}


def _stack_poses(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    red, blue = spaced_points(rng, [Area(x=(0.03, 0.2), y=(0.38, 0.62)), Area(x=(0.0, 0.15), y=(0.4, 0.6))], 0.1)
    return {"red_cube": cube_pose(red), "blue_cube": cube_pose(blue)}


def _bin_poses(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "red_cube": cube_pose(Area(x=(0.1, 0.2), y=(0.4, 0.6)).sample(rng)),
        "bin": bin_pose(Area(x=(-0.06, -0.02), y=(0.45, 0.55)).sample(rng)),
    }


def _tidy_poses(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = spaced_points(rng, [Area(x=(0.03, 0.22), y=(0.35, 0.65))] * len(TIDY_COLOURS), spacing=0.075)
    poses = {cube_body(colour): cube_pose(xy) for colour, xy in zip(TIDY_COLOURS, points, strict=True)}
    poses["bin"] = bin_pose(Area(x=(-0.13, -0.09), y=(0.46, 0.54)).sample(rng))
    return poses


@dataclass(frozen=True)
class TaskSpec:
    """Everything task-specific the driver needs."""

    name: str
    scene: Path | str
    """gym-aloha's scene file, or MJCF text of our own (from :func:`lwd_sim.scenes.scene_xml`)."""
    objects: tuple[str, ...]
    sample_poses: Callable[[int], dict[str, np.ndarray]]
    stage: Callable[[ContactSet, str], int]
    """Stage reward from the contacts and the episode's target ("" for a task without targets)."""
    max_stage: int
    instructions: tuple[str, ...]
    """The trained paraphrases; ``{target}`` in one is replaced by the episode's target."""
    held_out_instructions: tuple[str, ...]
    """Paraphrases never used by a demonstration or fleet episode, for evaluation only."""
    targets: tuple[str, ...] = ()
    """What an instruction can name (one drawn per episode from the seed); empty: the task names none."""
    horizon: int = SHORT_HORIZON
    """Control steps a scripted demonstration may take (the longest one measured, with margin)."""

    def instruction_set(self, name: str) -> tuple[str, ...]:
        """The paraphrases of one of :data:`INSTRUCTION_SETS`."""
        if name not in INSTRUCTION_SETS:
            raise ValueError(f"unknown instruction set {name!r}; valid sets are {INSTRUCTION_SETS}")
        return self.instructions if name == "trained" else self.held_out_instructions

    def model(self) -> mujoco.MjModel:
        """The compiled MuJoCo model of the scene."""
        if isinstance(self.scene, Path):
            return mujoco.MjModel.from_xml_path(str(self.scene))
        return mujoco.MjModel.from_xml_string(self.scene)

    def check_target(self, target: str) -> str:
        """``target`` if this task can name it ("" for a task without targets); ValueError otherwise."""
        valid = self.targets or ("",)
        if target not in valid:
            raise ValueError(f"task {self.name!r} has no target {target!r}; valid targets are {valid}")
        return target


TASKS: dict[str, TaskSpec] = {
    "transfer_cube": TaskSpec(
        name="transfer_cube",
        scene=ASSETS_DIR / "bimanual_viperx_transfer_cube.xml",
        objects=("box",),
        sample_poses=_cube_poses,
        stage=_untargeted(transfer_cube_stage),
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
        stage=_untargeted(insertion_stage),
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
    "pick_colour": TaskSpec(
        name="pick_colour",
        scene=scene_xml(PICK_COLOURS),
        objects=tuple(cube_body(colour) for colour in PICK_COLOURS),
        sample_poses=_pick_colour_poses,
        stage=pick_colour_stage,
        max_stage=4,
        instructions=(
            "pick up the {target} cube with the right arm and hand it to the left arm",
            "hand the {target} block over from the right gripper to the left gripper",
            "grab the {target} cube, not the other one, and pass it to your left hand",
            "transfer the {target} cube to the left arm",
        ),
        held_out_instructions=(
            "the left arm should end up holding the {target} cube; pass it over with the right arm",
            "lift the {target} box with the right hand and give it to the left hand",
        ),
        targets=PICK_COLOURS,
    ),
    "stack_cube": TaskSpec(
        name="stack_cube",
        scene=scene_xml(("red", "blue")),
        objects=("red_cube", "blue_cube"),
        sample_poses=_stack_poses,
        stage=_untargeted(lambda contacts: place_stage(contacts, "red_cube", ("blue_cube",))),
        max_stage=4,
        instructions=(
            "stack the red cube on top of the blue cube",
            "put the red block onto the blue block",
            "pick up the red cube and place it on the blue one",
            "build a tower with the red cube on the blue cube",
        ),
        held_out_instructions=(
            "set the red cube down on top of the blue cube and let go",
            "the blue block should end up under the red block",
        ),
    ),
    "cube_in_bin": TaskSpec(
        name="cube_in_bin",
        scene=scene_xml(("red",), with_bin=True),
        objects=("red_cube", "bin"),
        sample_poses=_bin_poses,
        stage=_untargeted(lambda contacts: place_stage(contacts, "red_cube", BIN_GEOMS)),
        max_stage=4,
        instructions=(
            "put the red cube into the bin",
            "drop the red block in the tray",
            "pick up the red cube and place it in the box",
            "move the red cube into the brown bin",
        ),
        held_out_instructions=(
            "the red cube belongs in the bin; put it there",
            "lift the red block and release it inside the tray",
        ),
    ),
    "tidy_cubes": TaskSpec(
        name="tidy_cubes",
        scene=scene_xml(TIDY_COLOURS, with_bin=True),
        objects=(*(cube_body(colour) for colour in TIDY_COLOURS), "bin"),
        sample_poses=_tidy_poses,
        stage=_untargeted(tidy_stage),
        max_stage=3 * len(TIDY_COLOURS),
        instructions=(
            "hand the red, green, blue, yellow and purple cubes to the left arm one by one and put each into the bin",
            "tidy up: pass all five cubes to the left hand and place them in the tray",
            "move every cube on the table into the brown bin on the left",
            "one cube at a time, give it to the left arm and drop it in the bin",
        ),
        held_out_instructions=(
            "clear the right side of the table by putting each of the five blocks in the box on the left",
            "one after another, pass the red, green, blue, yellow and purple cube across and place it inside the bin",
        ),
        horizon=2000,
    ),
}
"""The supported tasks, by name."""

"""MuJoCo scenes of our own tasks, built from gym-aloha's robot, table and cube, plus seeded layouts.

``scene_xml`` reads gym-aloha's transfer-cube scene (which includes the table, both ViperX arms
and their 16 position actuators from ``gym_aloha.constants.ASSETS_DIR``), drops its one red box,
and adds the objects of a task: cubes are copies of gym-aloha's box body (same mass, friction and
contact softness) in other colours, and a bin is an open tray of five boxes on a free joint.
Include and mesh paths are made absolute, so the text loads with ``mujoco.MjModel.from_xml_string``
from anywhere and nothing is written to site-packages.

The layout helpers (:class:`Area`, :func:`spaced_points`, :func:`cube_pose`, :func:`bin_pose`) let each
task in :mod:`lwd_sim.tasks` draw its objects' initial poses ``(x, y, z, qw, qx, qy, qz)`` from the
episode seed, with a minimum spacing so that a gripper closing on one cube does not touch another.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

import numpy as np
from gym_aloha.constants import ASSETS_DIR

BASE_SCENE = ASSETS_DIR / "bimanual_viperx_transfer_cube.xml"
"""gym-aloha's scene whose robot, table and box the generated scenes reuse."""
CUBE_HALF = 0.02
"""Half edge of every cube [m] (gym-aloha's box)."""
COLOURS = {"red": "1 0 0 1", "green": "0 0.8 0 1", "blue": "0 0 1 1", "yellow": "1 0.85 0 1", "purple": "0.6 0 0.8 1"}
BIN_FLOOR_HALF = (0.08, 0.11, 0.003)
"""Half sizes [m] of the bin's floor; the walls stand on its rim."""
BIN_WALL_HALF_HEIGHT = 0.02
BIN_WALL_HALF_THICKNESS = 0.004
BIN_GEOMS = ("bin_floor", "bin_wall_px", "bin_wall_nx", "bin_wall_py", "bin_wall_ny")
UPRIGHT = np.array([1.0, 0.0, 0.0, 0.0])
DROP_HEIGHT = 0.05
"""Cubes start this high (gym-aloha's box does) and settle on the table in the first steps."""


@dataclass(frozen=True)
class Area:
    """An axis-aligned rectangle of the table top [m] that object centres are drawn from."""

    x: tuple[float, float]
    y: tuple[float, float]

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """A uniform (x, y) point of the area."""
        return np.array([rng.uniform(*self.x), rng.uniform(*self.y)])


def cube_body(colour: str) -> str:
    """Body (and geom) name of the cube of ``colour``."""
    return f"{colour}_cube"


def _cube(template: ElementTree.Element, colour: str) -> ElementTree.Element:
    body = copy.deepcopy(template)
    name = cube_body(colour)
    body.set("name", name)
    body.find("joint").set("name", f"{name}_joint")
    geom = body.find("geom")
    geom.set("name", name)
    geom.set("rgba", COLOURS[colour])
    return body


def _bin() -> ElementTree.Element:
    body = ElementTree.Element("body", name="bin", pos="0 0 0")
    ElementTree.SubElement(body, "joint", name="bin_joint", type="free", frictionloss="0.01")
    ElementTree.SubElement(body, "inertial", pos="0 0 0.01", mass="0.5", diaginertia="0.005 0.005 0.005")
    fx, fy, fz = BIN_FLOOR_HALF
    h, t = BIN_WALL_HALF_HEIGHT, BIN_WALL_HALF_THICKNESS
    wall_z = 2 * fz + h
    boxes = {
        "bin_floor": ((0.0, 0.0, fz), (fx, fy, fz)),
        "bin_wall_px": ((fx - t, 0.0, wall_z), (t, fy, h)),
        "bin_wall_nx": ((t - fx, 0.0, wall_z), (t, fy, h)),
        "bin_wall_py": ((0.0, fy - t, wall_z), (fx, t, h)),
        "bin_wall_ny": ((0.0, t - fy, wall_z), (fx, t, h)),
    }
    for name, (pos, size) in boxes.items():
        ElementTree.SubElement(
            body,
            "geom",
            name=name,
            type="box",
            pos=" ".join(f"{v:g}" for v in pos),
            size=" ".join(f"{v:g}" for v in size),
            condim="4",
            friction="1 0.005 0.0001",
            rgba="0.55 0.4 0.25 1",
        )
    return body


def scene_xml(cubes: tuple[str, ...], with_bin: bool = False) -> str:
    """MJCF text of the ALOHA scene with one cube per colour in ``cubes`` and optionally a bin."""
    root = ElementTree.parse(BASE_SCENE).getroot()
    ElementTree.SubElement(root, "compiler", meshdir=str(ASSETS_DIR))
    for include in root.iter("include"):
        include.set("file", str(ASSETS_DIR / include.get("file")))
    worldbody = root.find("worldbody")
    box = worldbody.find("body[@name='box']")
    worldbody.remove(box)
    keyframe = root.find("keyframe")
    if keyframe is not None:
        root.remove(keyframe)
    for colour in cubes:
        worldbody.append(_cube(box, colour))
    if with_bin:
        worldbody.append(_bin())
    return ElementTree.tostring(root, encoding="unicode")


def cube_pose(xy: np.ndarray) -> np.ndarray:
    """An upright cube above ``xy``, dropped from gym-aloha's start height."""
    return np.concatenate([xy, [DROP_HEIGHT], UPRIGHT])


def bin_pose(xy: np.ndarray) -> np.ndarray:
    """The bin standing on the table at ``xy``."""
    return np.concatenate([xy, [0.0], UPRIGHT])


def spaced_points(rng: np.random.Generator, areas: list[Area], spacing: float, tries: int = 1000) -> list[np.ndarray]:
    """One point per area, every pair at least ``spacing`` apart (rejection sampling on the whole set)."""
    pairs = [(i, j) for i in range(len(areas)) for j in range(i + 1, len(areas))]
    for _ in range(tries):
        points = [area.sample(rng) for area in areas]
        if all(np.linalg.norm(points[i] - points[j]) >= spacing for i, j in pairs):
            return points
    raise RuntimeError(f"no layout with spacing {spacing} m in {tries} tries; the areas are too small")

"""Differential IK: Jacobian correctness and tracking accuracy on the simulated arms."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.kinematics import ArmKinematics, orientation_error, rotation
from lwd_sim.planner import align, pick_rotation

POSITION_TOLERANCE = 0.005
"""Stated IK tracking tolerance: 5 mm on the measured tool point after settling."""
ORIENTATION_TOLERANCE = 0.05
"""and 0.05 rad on the measured gripper orientation."""


@pytest.fixture(scope="module")
def driver():
    driver = AlohaSimDriver("transfer_cube", cameras=[])
    yield driver
    driver.close()


@pytest.mark.parametrize("side", ["left", "right"])
def test_jacobian_matches_finite_differences(driver, side):
    driver.reset(0)
    arm = ArmKinematics(driver.model, side)
    joints = driver.data.qpos[arm.qpos_index].copy() + 0.1
    data = arm.pose_at(joints)
    jacobian = arm.jacobian(data)
    base, _ = arm.tool_pose(data)
    for column in range(6):
        moved = joints.copy()
        moved[column] += 1e-6
        position, _ = arm.tool_pose(arm.pose_at(moved))
        np.testing.assert_allclose((position - base) / 1e-6, jacobian[:3, column], atol=1e-4)


@pytest.mark.parametrize(
    "side, target, rotation_matrix",
    [
        ("right", np.array([0.10, 0.50, 0.10]), pick_rotation("right", 0.0)),
        ("right", np.array([0.05, 0.45, 0.20]), pick_rotation("right", 0.3)),
        ("left", np.array([-0.10, 0.55, 0.15]), pick_rotation("left", -0.2)),
        ("left", np.array([-0.15, 0.50, 0.22]), rotation("x", np.pi / 2)),
    ],
)
def test_ik_tracks_reachable_targets_within_tolerance(driver, side, target, rotation_matrix):
    driver.reset(0)
    arm = ArmKinematics(driver.model, side)
    index = slice(0, 6) if side == "left" else slice(7, 13)
    command = driver.measured_qpos()
    for _ in range(150):
        command[index] = arm.solve(command[index], target, rotation_matrix)
        driver.step(command)
    mujoco.mj_forward(driver.model, driver.data)
    position, orientation = arm.tool_pose(driver.data)
    assert np.linalg.norm(position - target) < POSITION_TOLERANCE
    assert np.linalg.norm(orientation_error(rotation_matrix, orientation)) < ORIENTATION_TOLERANCE


def test_ik_step_is_bounded(driver):
    driver.reset(0)
    arm = ArmKinematics(driver.model, "right")
    joints = driver.data.qpos[arm.qpos_index].copy()
    start, orientation = arm.tool_pose(arm.pose_at(joints))
    moved = arm.solve(joints, start + np.array([-0.5, 0.0, 0.0]), orientation, max_linear=0.01)
    end, _ = arm.tool_pose(arm.pose_at(moved))
    assert 0.003 < np.linalg.norm(end - start) < 0.015


def test_rotation_helpers():
    turn = rotation("z", 0.4)
    np.testing.assert_allclose(orientation_error(turn, np.eye(3)), [0.0, 0.0, 0.4], atol=1e-9)
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.6, 0.8])
    np.testing.assert_allclose(align(a, b) @ a, b, atol=1e-9)
    with pytest.raises(ValueError, match="axis"):
        rotation("w", 1.0)
    with pytest.raises(ValueError, match="side"):
        ArmKinematics(mujoco.MjModel.from_xml_string("<mujoco/>"), "middle")

"""AlohaSimDriver: determinism, observations, configuration errors and command validation."""

from __future__ import annotations

import numpy as np
import pytest
from gym_aloha.constants import JOINTS
from lwd_interfaces.robot import CommandError, ConfigError, RobotDriver, validate_command
from lwd_interfaces.robots import ALOHA_SIM
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.rendering import StaleImagesError
from lwd_sim.tasks import TASKS


@pytest.fixture(scope="module")
def cube_driver():
    driver = AlohaSimDriver("transfer_cube", cameras=["top"], height=48, width=64)
    yield driver
    driver.close()


def _rollout(driver: AlohaSimDriver, seed: int, steps: int = 25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    first = driver.reset(seed)
    wiggle = np.random.default_rng(123).normal(0.0, 0.05, (steps, ALOHA_SIM.dof))
    qpos, images = [first.qpos], [first.images["top"]]
    for offset in wiggle:
        observation = driver.step(first.qpos + offset)
        qpos.append(observation.qpos)
        images.append(observation.images["top"])
    return np.array(qpos), np.array(images), driver.object_poses()["box"]


def test_same_seed_gives_same_trajectory_and_images(cube_driver):
    qpos_a, images_a, box_a = _rollout(cube_driver, seed=7)
    qpos_b, images_b, box_b = _rollout(cube_driver, seed=7)
    np.testing.assert_array_equal(qpos_a, qpos_b)
    np.testing.assert_array_equal(images_a, images_b)
    np.testing.assert_array_equal(box_a, box_b)


def test_frames_read_now_and_then_equal_those_read_every_step(cube_driver):
    """A step's images are rendered when first read; skipping the frames in between changes none of them."""
    _, every_frame, _ = _rollout(cube_driver, seed=7)
    first = cube_driver.reset(7)
    wiggle = np.random.default_rng(123).normal(0.0, 0.05, (25, ALOHA_SIM.dof))
    sparse = {0: first.images["top"]}
    for step, offset in enumerate(wiggle, start=1):
        observation = cube_driver.step(first.qpos + offset)
        if step % 6 == 0:
            sparse[step] = observation.images["top"]
    for step, image in sparse.items():
        np.testing.assert_array_equal(image, every_frame[step])


def test_a_step_s_images_first_read_after_the_next_step_are_refused(cube_driver):
    observation = cube_driver.reset(3)
    assert set(observation.images) == {"top"} and "top" in observation.images and len(observation.images) == 1
    cube_driver.step(observation.qpos)
    with pytest.raises(StaleImagesError, match="after the simulation stepped on"):
        observation.images["top"]
    kept = cube_driver.reset(4)
    frame = kept.images["top"].copy()
    cube_driver.step(kept.qpos)
    np.testing.assert_array_equal(kept.images["top"], frame)  # read in time, so kept
    with pytest.raises(KeyError):
        kept.images["angle"]


def test_different_seeds_place_the_object_differently(cube_driver):
    cube_driver.reset(1)
    first = cube_driver.object_poses()["box"][:3]
    cube_driver.reset(2)
    second = cube_driver.object_poses()["box"][:3]
    assert np.linalg.norm(first - second) > 1e-3
    for position in (first, second):
        assert 0.0 <= position[0] <= 0.2 and 0.4 <= position[1] <= 0.6


def test_observation_has_the_contract_shapes(cube_driver):
    observation = cube_driver.reset(0)
    assert isinstance(cube_driver, RobotDriver)
    assert observation.qpos.shape == (ALOHA_SIM.dof,) and observation.qvel.shape == (ALOHA_SIM.dof,)
    assert cube_driver.joint_names[6] == "left_arm_gripper" and len(cube_driver.joint_names) == ALOHA_SIM.dof
    image = observation.images["top"]
    assert image.dtype == np.uint8 and image.shape == (48, 64, 3)
    assert image.std() > 5, "the rendered image should show the scene, not a flat colour"
    stepped = cube_driver.step(observation.qpos)
    assert stepped.stamp_ns - observation.stamp_ns == 20_000_000, "control period is 20 ms (50 Hz)"


def test_instruction_paraphrase_depends_on_seed(cube_driver):
    instructions = set()
    for seed in range(12):
        cube_driver.reset(seed)
        assert cube_driver.instruction in TASKS["transfer_cube"].instructions
        instructions.add(cube_driver.instruction)
    assert len(instructions) >= 2
    cube_driver.reset(3)
    again = cube_driver.instruction
    cube_driver.reset(3)
    assert cube_driver.instruction == again


def test_every_task_holds_out_at_least_two_new_paraphrases():
    for name, spec in TASKS.items():
        assert len(spec.held_out_instructions) >= 2, name
        assert len(set(spec.held_out_instructions)) == len(spec.held_out_instructions), name
        assert not set(spec.held_out_instructions) & set(spec.instructions), f"{name}: a held-out one is trained"
        assert spec.instruction_set("trained") == spec.instructions
        assert spec.instruction_set("held_out") == spec.held_out_instructions


def test_held_out_instructions_change_the_words_only(cube_driver):
    seen = set()
    for seed in range(12):
        trained = cube_driver.reset(seed)
        trained_image = trained.images["top"]
        assert cube_driver.instruction in TASKS["transfer_cube"].instructions
        held_out = cube_driver.reset(seed, instructions="held_out")
        seen.add(cube_driver.instruction)
        np.testing.assert_array_equal(held_out.object_poses, trained.object_poses)
        np.testing.assert_array_equal(held_out.images["top"], trained_image)
    assert seen == set(TASKS["transfer_cube"].held_out_instructions), "each held-out paraphrase is used"
    with pytest.raises(ValueError, match="unknown instruction set 'novel'"):
        cube_driver.reset(0, instructions="novel")


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"insertion.*transfer_cube"):
        AlohaSimDriver("stack_blocks", cameras=[])


def test_unknown_camera_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown camera.*'nose'.*'top'"):
        AlohaSimDriver("transfer_cube", cameras=["top", "nose"])


@pytest.mark.parametrize("height, width", [(0, 128), (96, -1), (96.5, 128)])
def test_bad_resolution_is_rejected(height, width):
    with pytest.raises(ConfigError, match="image size"):
        AlohaSimDriver("transfer_cube", cameras=["top"], height=height, width=width)


@pytest.mark.parametrize(
    "command, message",
    [
        (np.zeros(13), r"shape \(14,\)"),
        (np.zeros((2, 14)), r"shape \(14,\)"),
        (np.full(14, np.nan), "non-finite"),
        (np.r_[np.zeros(13), np.inf], r"indices \[13\]"),
        (["a"] * 14, "not numeric"),
    ],
)
def test_bad_command_raises_and_never_reaches_physics(cube_driver, command, message):
    cube_driver.reset(0)
    cube_driver.step(cube_driver.last_command)
    qpos, ctrl, time = cube_driver.data.qpos.copy(), cube_driver.data.ctrl.copy(), cube_driver.data.time
    steps, last = cube_driver.steps, cube_driver.last_command.copy()
    with pytest.raises(CommandError, match=message):
        cube_driver.step(command)
    np.testing.assert_array_equal(cube_driver.data.qpos, qpos)
    np.testing.assert_array_equal(cube_driver.data.ctrl, ctrl)
    assert cube_driver.data.time == time and cube_driver.steps == steps
    np.testing.assert_array_equal(cube_driver.last_command, last)
    assert np.all(np.isfinite(cube_driver.data.qpos))


def test_validate_command_accepts_lists():
    np.testing.assert_array_equal(validate_command([0.5] * 14, 14), np.full(14, 0.5))


def test_gripper_command_opens_and_closes_the_fingers(cube_driver):
    start = cube_driver.reset(0)
    command = start.qpos.copy()
    command[[6, 13]] = 1.0
    for _ in range(30):
        opened = cube_driver.step(command)
    assert opened.qpos[6] > 0.9 and opened.qpos[13] > 0.9
    command[[6, 13]] = 0.0
    for _ in range(30):
        closed = cube_driver.step(command)
    assert closed.qpos[6] < 0.2 and closed.qpos[13] < 0.2


def test_insertion_has_two_objects_and_two_cameras():
    driver = AlohaSimDriver("insertion", cameras=["top", "angle"], height=24, width=32)
    observation = driver.reset(5)
    assert set(driver.object_poses()) == {"peg", "socket"}
    assert set(observation.images) == {"top", "angle"}
    assert not np.array_equal(observation.images["top"], observation.images["angle"])
    assert driver.stage_reward == 0 and not driver.success
    driver.close()


def test_the_simulated_aloha_matches_its_description(cube_driver):
    """The robot description's joint order and limits are gym-aloha's joints and the MJCF's joint ranges."""
    assert cube_driver.joint_names == list(JOINTS)
    for index, name in enumerate(ALOHA_SIM.joint_names):
        side, _, joint = name.partition("_arm_")
        if index in ALOHA_SIM.grippers:
            assert (ALOHA_SIM.lower[index], ALOHA_SIM.upper[index]) == (0.0, 1.0)
        else:
            low, high = cube_driver.model.joint(f"vx300s_{side}/{joint}").range
            assert (ALOHA_SIM.lower[index], ALOHA_SIM.upper[index]) == pytest.approx((low, high), abs=1e-6)


def test_calibration_projects_the_cube_onto_its_pixels():
    """The top camera's projection puts the cube's centre where the renderer draws it, to within a pixel."""
    driver = AlohaSimDriver("transfer_cube", cameras=["top"], height=96, width=128)
    try:
        for seed in (3, 11):
            image = driver.reset(seed).images["top"].astype(int)
            red = (image[..., 0] > 150) & (image[..., 1] < 80) & (image[..., 2] < 80)
            rows, columns = np.nonzero(red)
            x, y = driver.calibration().cameras["top"].normalized(driver.object_poses()["box"][:3])
            assert abs((x + 1) * 64 - (columns.mean() + 0.5)) < 1.0
            assert abs((y + 1) * 48 - (rows.mean() + 0.5)) < 1.0
    finally:
        driver.close()


def test_a_camera_that_moves_with_the_arm_has_no_calibration():
    driver = AlohaSimDriver("transfer_cube", cameras=["top", "left_wrist"], height=16, width=16)
    try:
        with pytest.raises(ConfigError, match="'left_wrist' moves with the robot"):
            driver.calibration()
    finally:
        driver.close()

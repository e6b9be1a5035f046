"""Our own tasks (pick_colour, stack_cube, cube_in_bin, tidy_cubes): scenes, stage rewards, targets, operator plans."""

from __future__ import annotations

import numpy as np
import pytest
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import ScriptedOperator
from lwd_sim.planner import plan_for
from lwd_sim.scenes import BIN_GEOMS
from lwd_sim.tasks import LEFT_FINGER, RIGHT_FINGER, TASKS, TIDY_COLOURS, place_stage, tidy_stage

SHORT_TASKS = ("pick_colour", "stack_cube", "cube_in_bin")
RIGHT_OTHER = "vx300s_right/10_left_gripper_finger"


@pytest.fixture(scope="module")
def drivers():
    opened = {task: AlohaSimDriver(task, cameras=[]) for task in (*SHORT_TASKS, "tidy_cubes")}
    yield opened
    for driver in opened.values():
        driver.close()


def assert_monotone_ish(stages: list[int], max_stage: int) -> None:
    """Ends at ``max_stage``, first reaches every level in order, and rarely sits below its best so far."""
    stages_array = np.array(stages)
    best = np.maximum.accumulate(stages_array)
    assert stages_array[-1] == max_stage
    first = [int(np.argmax(stages_array >= level)) for level in range(1, max_stage + 1)]
    assert first == sorted(first), f"levels first reached out of order: {first}"
    assert np.mean(stages_array < best - 1) < 0.05, "the stage fell more than one below its best too often"
    assert np.mean(stages_array < best) < 0.15, "the stage sat below its best too often"


def test_every_task_has_a_plan_and_enough_paraphrases():
    for name, spec in TASKS.items():
        assert len(spec.instructions) >= 4 and len(spec.held_out_instructions) >= 2, name
        assert plan_for(name, spec.targets[0] if spec.targets else "").task == name


@pytest.mark.parametrize("task", SHORT_TASKS)
@pytest.mark.parametrize("seed", [0, 1])
def test_the_operator_solves_each_short_task(drivers, task, seed):
    driver = drivers[task]
    demo = ScriptedOperator(seed=seed).demonstrate(driver, seed, max_steps=300)
    assert demo.success and driver.success
    assert_monotone_ish(demo.stages, driver.max_stage)


def test_the_long_task_takes_over_twenty_seconds_and_counts_every_sub_goal(drivers):
    driver = drivers["tidy_cubes"]
    demo = ScriptedOperator(seed=0).demonstrate(driver, 0, max_steps=driver.spec.horizon)
    assert demo.success and demo.steps >= 1000, f"{demo.steps} steps at 50 Hz"
    assert driver.max_stage == 3 * len(TIDY_COLOURS) and set(demo.stages) == set(range(driver.max_stage + 1))
    assert_monotone_ish(demo.stages, driver.max_stage)


def test_the_long_task_resumes_from_the_middle_of_a_hand_over(drivers):
    driver = drivers["tidy_cubes"]
    first = ScriptedOperator(seed=3)
    driver.reset(3)
    first.reset(driver)
    first.take_over(driver, "policy stand-in")
    while first.phase != "to_bin_green":
        driver.step(first.command(driver))
    fresh = ScriptedOperator(seed=4)
    fresh.reset(driver)
    fresh.take_over(driver, "manual")
    assert fresh.phase == "to_bin_green" and driver.stage_reward == 5
    for _ in range(driver.spec.horizon):
        driver.step(fresh.command(driver))
        if driver.success:
            break
    assert driver.success


def test_a_placement_resumes_with_the_cube_already_in_the_gripper(drivers):
    driver = drivers["stack_cube"]
    first = ScriptedOperator(seed=0)
    driver.reset(2)
    first.reset(driver)
    first.take_over(driver, "policy stand-in")
    while first.phase != "transport_red_cube":
        driver.step(first.command(driver))
    fresh = ScriptedOperator(seed=1)
    fresh.reset(driver)
    fresh.take_over(driver, "manual")
    assert fresh.phase == "transport_red_cube"
    for _ in range(200):
        driver.step(fresh.command(driver))
        if driver.success:
            break
    assert driver.success


def test_the_target_is_drawn_from_the_seed_and_named_by_the_instruction(drivers):
    driver = drivers["pick_colour"]
    seen = set()
    for seed in range(12):
        driver.reset(seed)
        target = driver.target
        seen.add(target)
        assert target in driver.instruction and f"{target} " in driver.instruction
        driver.reset(seed, instructions="held_out")
        assert driver.target == target and driver.instruction in {
            template.format(target=target) for template in driver.spec.held_out_instructions
        }
    assert seen == {"red", "blue"}
    with pytest.raises(ValueError, match="valid targets"):
        driver.reset(0, target="green")


def test_the_same_scene_needs_a_different_cube_moved_for_each_named_target(drivers):
    driver = drivers["pick_colour"]
    for target, other in (("red", "blue"), ("blue", "red")):
        driver.reset(5, target=target)
        start = {name: pose[:3].copy() for name, pose in driver.object_poses().items()}
        operator = ScriptedOperator(seed=0)
        operator.reset(driver)
        operator.take_over(driver, "demonstration")
        for _ in range(300):
            driver.step(operator.command(driver))
            if driver.success:
                break
        assert driver.success and driver.target == target
        end = driver.object_poses()
        assert end[f"{target}_cube"][2] > start[f"{target}_cube"][2] + 0.1, "the named cube is held up"
        assert np.linalg.norm(end[f"{other}_cube"][:2] - start[f"{other}_cube"][:2]) < 0.01, "the other cube stays put"
        contacts = driver.contacts()
        assert driver.spec.stage(contacts, other) == 0, "for the other instruction this episode is no success"


def test_place_and_tidy_stages_on_contact_sets():
    held = {("red_cube", RIGHT_FINGER), ("red_cube", RIGHT_OTHER)}
    assert place_stage(frozenset({("red_cube", "table")}), "red_cube", ("blue_cube",)) == 0
    assert place_stage(frozenset(held | {("red_cube", "table")}), "red_cube", ("blue_cube",)) == 1
    assert place_stage(frozenset(held), "red_cube", ("blue_cube",)) == 2
    assert place_stage(frozenset(held | {("blue_cube", "red_cube")}), "red_cube", ("blue_cube",)) == 3
    assert place_stage(frozenset({("blue_cube", "red_cube")}), "red_cube", ("blue_cube",)) == 4
    assert place_stage(frozenset({("red_cube", "blue_cube"), ("red_cube", "table")}), "red_cube", ("blue_cube",)) == 0
    binned = {("red_cube", "bin_floor"), ("green_cube", BIN_GEOMS[1])}
    assert tidy_stage(frozenset(binned)) == 6
    assert tidy_stage(frozenset(binned | {("blue_cube", RIGHT_FINGER)})) == 7
    assert tidy_stage(frozenset(binned | {("blue_cube", LEFT_FINGER)})) == 8
    assert tidy_stage(frozenset(binned | {("blue_cube", LEFT_FINGER), ("blue_cube", "table")})) == 6
    assert tidy_stage(frozenset({("red_cube", "bin_floor"), ("red_cube", LEFT_FINGER)})) == 2, "not yet let go"


def test_scenes_are_seeded_and_keep_the_cubes_apart(drivers):
    for task, driver in drivers.items():
        first = driver.reset(7).object_poses
        np.testing.assert_array_equal(driver.reset(7).object_poses, first)
        assert not np.array_equal(driver.reset(8).object_poses, first), task
        cubes = [pose[:2] for name, pose in zip(driver.spec.objects, first, strict=True) if name.endswith("_cube")]
        gaps = [np.linalg.norm(a - b) for i, a in enumerate(cubes) for b in cubes[i + 1 :]]
        assert min(gaps, default=np.inf) >= 0.075, task
        assert driver.stage_reward == 0 and not driver.success, task

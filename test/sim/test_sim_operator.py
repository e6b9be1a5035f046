"""ScriptedOperator: demonstrations, replanning from arbitrary states, takeover triggers, hand-back."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import Imperfection, OperatorConfig, ScriptedOperator, TakeoverTriggers
from lwd_sim.operator_trials import RandomWalkPolicy, takeover_episode
from lwd_sim.planner import plan_for


@pytest.fixture(scope="module")
def cube():
    driver = AlohaSimDriver("transfer_cube", cameras=[])
    yield driver
    driver.close()


@pytest.fixture(scope="module")
def insertion():
    driver = AlohaSimDriver("insertion", cameras=[])
    yield driver
    driver.close()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_demonstrates_transfer_cube_in_a_short_horizon(cube, seed):
    demo = ScriptedOperator(seed=seed).demonstrate(cube, seed, max_steps=250)
    assert demo.success
    assert demo.commands.shape == (demo.steps, 14) and np.all(np.isfinite(demo.commands))
    assert max(demo.stages) == 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_demonstrates_insertion_in_a_short_horizon(insertion, seed):
    demo = ScriptedOperator(seed=seed).demonstrate(insertion, seed, max_steps=250)
    assert demo.success


def test_demonstration_is_reproducible_even_with_imperfection(cube):
    config = OperatorConfig(imperfection=Imperfection.human())
    first = ScriptedOperator(config, seed=5).demonstrate(cube, 9, max_steps=120)
    second = ScriptedOperator(config, seed=5).demonstrate(cube, 9, max_steps=120)
    np.testing.assert_array_equal(first.commands, second.commands)
    perfect = ScriptedOperator(seed=5).demonstrate(cube, 9, max_steps=120)
    assert not np.array_equal(first.commands[:50], perfect.commands[:50]), "noise changes the commands"


def test_takes_over_from_a_random_policy_state(cube):
    outcome = takeover_episode(cube, seed=4, kind="random_walk", policy_steps=80, horizon=300)
    assert outcome.success and outcome.operator_steps > 0


def test_replans_from_a_state_with_the_cube_already_lifted(cube):
    operator = ScriptedOperator(seed=0)
    cube.reset(3)
    operator.reset(cube)
    operator.take_over(cube, "demo")
    while operator.phase != "reach":
        cube.step(operator.command(cube))
    fresh = ScriptedOperator(seed=1)
    fresh.reset(cube)
    decision = fresh.take_over(cube, "manual")
    assert fresh.phase == "to_meet" and decision.subgoal == "grasp"
    for _ in range(200):
        cube.step(fresh.command(cube))
        if cube.success:
            break
    assert cube.success


def _first_decision(driver, operator, command_for_step, steps=20):
    driver.reset(0)
    operator.reset(driver)
    for _ in range(steps):
        decision = operator.decide(driver, command_for_step(driver))
        if decision is not None:
            return decision
        driver.step(driver.last_command)
    return None


def test_unsafe_policy_commands_trigger_takeover(cube):
    def beyond_limits(driver):
        command = driver.last_command.copy()
        command[1] = -1.85
        return command

    def not_a_number(driver):
        return np.full(14, np.nan)

    assert _first_decision(cube, ScriptedOperator(seed=0), beyond_limits).reason == "joint_limit"
    assert _first_decision(cube, ScriptedOperator(seed=0), not_a_number).reason == "invalid_command"
    assert _first_decision(cube, ScriptedOperator(seed=0), lambda d: d.last_command.copy()) is None


def test_spot_checks_fire_at_random(cube):
    config = OperatorConfig(triggers=TakeoverTriggers(spot_check_probability=0.5))
    decision = _first_decision(cube, ScriptedOperator(config, seed=0), lambda d: d.last_command.copy())
    assert decision is not None and decision.reason == "spot_check"


def test_dropping_the_cube_triggers_takeover(cube):
    operator = ScriptedOperator(seed=0)
    cube.reset(1)
    operator.reset(cube)
    scripted = ScriptedOperator(seed=0)
    scripted.reset(cube)
    scripted.take_over(cube, "policy stand-in")
    while cube.stage_reward < 2:
        assert operator.decide(cube, None) is None
        cube.step(scripted.command(cube))
    command = cube.last_command.copy()
    command[13] = 1.0
    decision = None
    for _ in range(40):
        decision = operator.decide(cube, command)
        if decision is not None:
            break
        cube.step(command)
    assert decision is not None and decision.reason == "object_dropped"


def test_a_grip_that_slips_for_a_few_steps_is_not_a_drop(insertion):
    """Finger contacts flicker off for 1-4 steps while a grip holds; only a lasting release is a drop."""
    operator, stand_in = ScriptedOperator(seed=0), ScriptedOperator(seed=0)
    insertion.reset(0)
    operator.reset(insertion)
    stand_in.reset(insertion)
    stand_in.take_over(insertion, "policy stand-in")
    for _ in range(200):
        if insertion.stage_reward >= 2:
            break
        assert operator.decide(insertion, None) is None
        insertion.step(stand_in.command(insertion))
    for _ in range(25):
        insertion.step(stand_in.command(insertion))
    loosened = stand_in.command(insertion)
    loosened[6] = 1.0
    stages = []
    for step in range(30):
        command = loosened if step < 3 else stand_in.command(insertion)
        assert operator.decide(insertion, command) is None, f"takeover at step {step}, stages {stages}"
        insertion.step(command)
        stages.append(insertion.stage_reward)
    assert min(stages) <= 1 and stages[-1] >= 2, f"the grip must slip and recover: {stages}"


def test_random_walk_policy_moves_the_arms(cube):
    cube.reset(0)
    policy = RandomWalkPolicy(np.random.default_rng(0))
    for _ in range(30):
        cube.step(policy(cube))
    assert np.abs(cube.measured_qpos()[:6] - np.array([0, -0.96, 1.16, 0, -0.3, 0])).max() > 0.02


def test_bad_usage_errors(cube):
    operator = ScriptedOperator()
    with pytest.raises(RuntimeError, match="reset"):
        operator.take_over(cube, "x")
    cube.reset(0)
    operator.reset(cube)
    with pytest.raises(RuntimeError, match="not in control"):
        operator.command(cube)
    with pytest.raises(ValueError, match="transfer_cube"):
        plan_for("stack_blocks")


def test_arm_in_the_table_triggers_takeover(cube):
    cube.reset(0)
    operator = ScriptedOperator(seed=0)
    operator.reset(cube)
    cube.data.qpos[8:14] = [0.0, 1.0, 0.3, 0.0, 1.0, 0.0]  # forearm through the table top
    mujoco.mj_forward(cube.model, cube.data)
    assert ("table", "vx300s_right/5_lower_forearm") in cube.contacts()
    decision = operator.decide(cube, cube.measured_qpos())
    assert decision is not None and decision.reason == "collision"

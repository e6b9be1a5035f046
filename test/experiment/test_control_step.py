"""lwd_experiment.control_step: the scripted operator supervises through the intervention session, as a human would.

The one control step every simulated loop runs: takeover triggers, arbitration of policy and operator
commands, hand-back after each sub-goal, and statistics that count what happened. A demonstration's executed
commands, replayed on another scene, move the arms alike and fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from lwd_experiment.control_step import (
    CONTROL_PERIOD_NS,
    OPERATOR_SOURCE,
    assisted_episode,
    control_step,
    demonstration_commands,
    operator_parameters,
)
from lwd_intervention.labels import EpisodeEventKind
from lwd_intervention.modes import Mode
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import Imperfection, OperatorConfig, ScriptedOperator, TakeoverTriggers
from lwd_sim.replay import ReplayOperator


@pytest.fixture(scope="module")
def cube():
    driver = AlohaSimDriver("transfer_cube", cameras=[])
    yield driver
    driver.close()


def hold_still(driver: AlohaSimDriver) -> np.ndarray:
    """A policy that never moves: the stall trigger's case."""
    return driver.last_command.copy()


def test_scripted_operator_takes_over_a_stalled_policy_and_hands_back(cube) -> None:
    parameters = operator_parameters(max_step_delta=0.05)
    session = parameters.session()
    observation = cube.reset(0)
    operator = ScriptedOperator(OperatorConfig(triggers=TakeoverTriggers(stall_seconds=0.5)), seed=0)
    operator.reset(cube)
    session.start_episode(observation.stamp_ns)
    stalled_policy = observation.qpos.copy()
    outputs = []
    stamp = observation.stamp_ns
    while not operator.takeovers or operator.in_control or len(outputs) < operator.takeovers[0].step + 10:
        assert len(outputs) < 400, "the operator never took over and handed back"
        stamp += CONTROL_PERIOD_NS
        in_control = operator.in_control
        supervise = len(operator.takeovers) == 0 or in_control
        observation, output = control_step(cube, operator, session, observation, stalled_policy, stamp, supervise)
        outputs.append(output)

    assert session.arbiter.mode is Mode.AUTONOMOUS
    teleop = [output for output in outputs if output.intervention]
    assert teleop and all(output.source == OPERATOR_SOURCE for output in teleop)
    assert {output.source for output in outputs if not output.intervention} <= {"policy", "hold"}
    steps = np.array([output.command for output in outputs])
    assert np.max(np.abs(np.diff(steps, axis=0))) <= parameters.arbiter.max_step_delta + 1e-12
    stats = session.stats
    assert stats.interventions == len(operator.takeovers) == 1
    assert operator.takeovers[0].reason == "stall"
    assert 0 < stats.intervention_steps < stats.steps == len(outputs)
    assert stats.time_to_first_takeover_s >= 0.4
    label, end = session.end_with_ground_truth(cube.success, stamp).records
    assert label.source == "sim/ground_truth" and label.success == cube.success
    assert end.kind is EpisodeEventKind.END


def test_stall_triggers_takeover_and_hands_back_after_each_subgoal(cube):
    outcome = assisted_episode(cube, ScriptedOperator(seed=0), hold_still, seed=2, max_steps=700)
    assert outcome.success
    assert [decision.reason for decision in outcome.takeovers] == ["stall", "stall"]
    assert [decision.subgoal for decision in outcome.takeovers] == ["grasp", "grasp"]
    assert outcome.takeovers[0].step == 200, "stall_seconds=4 at 50 Hz"
    assert 0 < outcome.operator_steps < outcome.steps


def test_patience_budget_limits_takeovers(cube):
    config = OperatorConfig(triggers=TakeoverTriggers(patience=1))
    outcome = assisted_episode(cube, ScriptedOperator(config, seed=0), hold_still, 2, 700)
    assert len(outcome.takeovers) == 1 and not outcome.success


def test_reaction_delay_postpones_the_takeover(cube):
    config = OperatorConfig(imperfection=Imperfection(reaction_delay_steps=10))
    outcome = assisted_episode(cube, ScriptedOperator(config, seed=0), hold_still, 2, 230)
    assert outcome.takeovers[0].step == 210


REPLAY_TASK = "transfer_cube"
SOURCE, TARGET = 900_000, 900_001


def replay(commands: np.ndarray, seed: int) -> tuple[AlohaSimDriver, list[np.ndarray]]:
    """Replay ``commands`` on ``seed``'s scene; the driver after it and the measured arm poses at every step."""
    driver = AlohaSimDriver(REPLAY_TASK, cameras=())
    driver.reset(seed)
    operator = ReplayOperator(commands)
    arms = []
    for _ in commands:
        driver.step(operator.command(driver))
        arms.append(driver.measured_qpos())
    return driver, arms


def test_the_source_demonstration_succeeds_and_its_replay_elsewhere_moves_the_arms_alike_and_fails():
    commands = demonstration_commands(REPLAY_TASK, SOURCE, max_steps=400)
    assert commands.shape[1] == 14 and 50 < len(commands) < 400, "the operator solved its own scene"
    at_home, home_arms = replay(commands, SOURCE)
    assert at_home.success, "replayed on its own scene, the demonstration succeeds again"
    elsewhere, arms = replay(commands, TARGET)
    assert not elsewhere.success and elsewhere.stage_reward < elsewhere.max_stage
    # The arms follow the same commands; only the grippers' contact with the cube (or its absence) differs.
    joints = [index for index in range(14) if index not in (6, 13)]
    gap = np.abs(np.array(arms)[:, joints] - np.array(home_arms)[:, joints])
    assert np.median(gap) < 0.02


def test_a_replay_has_no_commands_past_its_end():
    operator = ReplayOperator(np.zeros((2, 14)))
    operator.command(None)
    operator.command(None)
    with pytest.raises(IndexError):
        operator.command(None)
    with pytest.raises(ValueError, match="needs commands"):
        ReplayOperator(np.zeros((0, 14)))

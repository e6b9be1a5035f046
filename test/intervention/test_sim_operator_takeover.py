"""The sim's scripted operator is just another teleop source: a live takeover, flagged truthfully."""

from __future__ import annotations

import numpy as np
from lwd_intervention.arbiter import StepInput, TeleopSample
from lwd_intervention.events import OperatorEvent
from lwd_intervention.labels import EpisodeEventKind
from lwd_intervention.modes import SOURCE_SCRIPTED_OPERATOR, Mode
from lwd_intervention.parameters import parameters_from_mapping
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import OperatorConfig, ScriptedOperator, TakeoverTriggers


def test_scripted_operator_takes_over_a_stalled_policy_and_hands_back() -> None:
    parameters = parameters_from_mapping(
        {"teleop_source": SOURCE_SCRIPTED_OPERATOR, "auto_label": True, "auto_start_episodes": False}
    )
    session = parameters.session()
    limit = parameters.arbiter.max_step_delta
    driver = AlohaSimDriver("transfer_cube", cameras=())
    observation = driver.reset(0)
    operator = ScriptedOperator(OperatorConfig(triggers=TakeoverTriggers(stall_seconds=0.5)), seed=0)
    operator.reset(driver)
    session.start_episode(observation.stamp_ns)
    stalled_policy = observation.qpos.copy()
    previous = None
    handed_back_at = None
    takeover_stamp = None
    step = 0
    while handed_back_at is None or step < handed_back_at + 10:
        assert step < 400, "the operator never took over and handed back"
        stamp = observation.stamp_ns + 1
        if not operator.in_control and handed_back_at is None and operator.decide(driver, stalled_policy):
            assert session.handle(OperatorEvent.TAKEOVER, SOURCE_SCRIPTED_OPERATOR, stamp).accepted
            takeover_stamp = stamp
        teleop = None
        if operator.in_control:
            teleop = TeleopSample(operator.command(driver), stamp, SOURCE_SCRIPTED_OPERATOR)
        output = session.step(StepInput(stamp, observation.qpos, stalled_policy, teleop))
        assert output.intervention == operator.in_control
        assert output.source == (SOURCE_SCRIPTED_OPERATOR if operator.in_control else "policy")
        if previous is not None:
            assert np.max(np.abs(output.command - previous)) <= limit + 1e-12
        previous = output.command
        observation = driver.step(output.command)
        if operator.in_control and operator.wants_hand_back(driver):
            operator.hand_back(driver)
            assert session.handle(OperatorEvent.HAND_BACK, SOURCE_SCRIPTED_OPERATOR, observation.stamp_ns).accepted
            handed_back_at = step
        step += 1

    assert session.arbiter.mode is Mode.AUTONOMOUS
    stats = session.stats
    assert stats.interventions == len(operator.takeovers) == 1
    assert operator.takeovers[0].reason == "stall"
    assert 0 < stats.intervention_steps < stats.steps
    assert stats.first_takeover_stamp_ns == takeover_stamp
    assert stats.time_to_first_takeover_s >= 0.4
    label, end = session.end_with_ground_truth(driver.success, observation.stamp_ns).records
    assert label.source == "sim/ground_truth" and label.success == driver.success
    assert end.kind is EpisodeEventKind.END

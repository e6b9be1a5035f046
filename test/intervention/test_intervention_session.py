"""InterventionSession: operator events from any device become arbiter changes, labels and episode events."""

from __future__ import annotations

import numpy as np
from lwd_intervention.arbiter import Arbiter, ArbiterConfig, StepInput, TeleopSample
from lwd_intervention.events import OperatorEvent
from lwd_intervention.labels import EpisodeEventKind, EpisodeLabeler, RewardLabelRecord
from lwd_intervention.modes import SOURCE_SCRIPTED_OPERATOR, Mode
from lwd_intervention.session import EpisodeTemplate, InterventionSession

S = 1_000_000_000
TEMPLATE = EpisodeTemplate(robot_id="robot-3", task="insertion", instruction="insert the peg")


def _session(auto_start: bool = True, auto_label: bool = False) -> InterventionSession:
    return InterventionSession(
        Arbiter(ArbiterConfig(blend_steps=2)),
        EpisodeLabeler(auto_label=auto_label),
        TEMPLATE,
        teleop_source=SOURCE_SCRIPTED_OPERATOR,
        auto_start=auto_start,
    )


def test_success_press_labels_ends_and_starts_the_next_episode() -> None:
    session = _session()
    started = session.start_episode(1 * S)
    first_id = started.records[0].info.episode_id
    assert first_id.startswith("robot-3-19700101T000001Z-")
    result = session.handle(OperatorEvent.SUCCESS, "operator/joy", 2 * S)
    assert result.accepted
    label, end, start = result.records
    assert isinstance(label, RewardLabelRecord) and label.episode_id == first_id and label.reward == 1.0
    assert label.source == "operator/joy"
    assert end.kind is EpisodeEventKind.END and end.info.episode_id == first_id
    assert start.kind is EpisodeEventKind.START and start.info.episode_id != first_id
    assert start.info.task == "insertion" and start.info.instruction == "insert the peg"


def test_stats_follow_the_scripted_operator_takeover() -> None:
    session = _session(auto_start=False)
    session.start_episode(0)
    zeros = np.zeros(14)
    for index in range(10):
        stamp = (index + 1) * 20_000_000
        if index == 3:
            assert session.handle(OperatorEvent.TAKEOVER, "operator/scripted", stamp).accepted
        if index == 7:
            session.handle(OperatorEvent.HAND_BACK, "operator/scripted", stamp)
        teleop = TeleopSample(zeros, stamp, SOURCE_SCRIPTED_OPERATOR)
        output = session.step(StepInput(stamp, zeros, zeros, teleop))
        assert output.intervention == (3 <= index < 7)
    stats = session.stats
    assert stats.steps == 10 and stats.interventions == 1 and stats.intervention_steps == 4
    assert stats.time_to_first_takeover_s == 0.08
    session.handle(OperatorEvent.FAILURE, "operator/keyboard", S)
    assert session.stats is None and session.closed_stats is stats


def test_unlabelled_end_is_refused_and_auto_label_uses_ground_truth() -> None:
    session = _session(auto_start=False)
    session.start_episode(0)
    refused = session.end_with_ground_truth(True, S)
    assert not refused.accepted and "no success/failure label" in refused.message
    auto = _session(auto_start=False, auto_label=True)
    auto.start_episode(0)
    label, end = auto.end_with_ground_truth(True, S).records
    assert label.source == "sim/ground_truth" and label.success and end.kind is EpisodeEventKind.END


def test_discard_and_rerecord_produce_recorder_events() -> None:
    session = _session(auto_start=True)
    episode_id = session.start_episode(0).records[0].info.episode_id
    (rerecord,) = session.handle(OperatorEvent.RERECORD, "operator/joy", S).records
    assert rerecord.kind is EpisodeEventKind.RERECORD and rerecord.info.episode_id == episode_id
    discard, start = session.handle(OperatorEvent.DISCARD, "operator/joy", 2 * S).records
    assert discard.kind is EpisodeEventKind.DISCARD and start.kind is EpisodeEventKind.START
    idle = _session(auto_start=False)
    result = idle.handle(OperatorEvent.DISCARD, "operator/joy", 0)
    assert not result.accepted and "no episode is open" in result.message


def test_mode_events_reach_the_arbiter_and_estop_wins() -> None:
    session = _session()
    assert session.handle(OperatorEvent.ESTOP, "operator/keyboard", 0).accepted
    refused = session.handle(OperatorEvent.TAKEOVER, "operator/keyboard", 0)
    assert not refused.accepted and session.arbiter.mode is Mode.ESTOP
    assert session.handle(OperatorEvent.RESET_ESTOP, "operator/keyboard", 0).accepted
    assert session.arbiter.mode is Mode.PAUSED

"""Per-episode intervention stats and the typestore messages the package produces."""

from __future__ import annotations

import numpy as np
from lwd_interfaces import lwd_typestore
from lwd_interfaces.topics import TOPIC_TYPES
from lwd_intervention.arbiter import StepOutput
from lwd_intervention.intervention_stats import InterventionStats
from lwd_intervention.labels import EpisodeEventKind, EpisodeEventRecord, EpisodeInfo, RewardLabelRecord
from lwd_intervention.messages import (
    episode_event_msg,
    intervention_state_msg,
    joint_command_msg,
    reward_label_msg,
    stamp_to_ns,
)
from lwd_intervention.modes import Mode

S = 1_000_000_000


def _output(stamp_ns: int, mode: Mode, source: str) -> StepOutput:
    return StepOutput(stamp_ns, np.zeros(14), mode, source, mode is Mode.TELEOP and source == "teleop/leader", False)


def test_stats_count_takeovers_steps_and_time_to_first_takeover() -> None:
    stats = InterventionStats(start_stamp_ns=10 * S)
    sequence = [
        (Mode.AUTONOMOUS, "policy"),
        (Mode.AUTONOMOUS, "policy"),
        (Mode.TELEOP, "hold"),
        (Mode.TELEOP, "teleop/leader"),
        (Mode.TELEOP, "teleop/leader"),
        (Mode.PAUSED, "hold"),
        (Mode.TELEOP, "teleop/leader"),
        (Mode.AUTONOMOUS, "policy"),
    ]
    for index, (mode, source) in enumerate(sequence):
        stats.update(_output(10 * S + (index + 1) * S // 2, mode, source))
    assert stats.steps == 8
    assert stats.interventions == 2
    assert stats.intervention_steps == 3
    assert stats.time_to_first_takeover_s == 1.5
    assert stats.as_metadata()["lwd.interventions"] == "2"


def test_stats_without_takeover() -> None:
    stats = InterventionStats(0)
    stats.update(_output(1, Mode.AUTONOMOUS, "policy"))
    assert stats.time_to_first_takeover_s is None
    assert stats.as_metadata()["lwd.time_to_first_takeover_s"] == ""


def test_messages_round_trip_through_cdr() -> None:
    typestore = lwd_typestore()
    info = EpisodeInfo("ep-1", "robot-1", "insertion", "insert the peg", "v000002")
    messages = {
        "/intervention/state": intervention_state_msg(_output(5 * S + 7, Mode.TELEOP, "teleop/leader")),
        "/episode/reward": reward_label_msg(RewardLabelRecord("ep-1", True, "operator/joy", 6 * S)),
        "/episode/event": episode_event_msg(EpisodeEventRecord(EpisodeEventKind.END, 6 * S, info)),
        "/command/executed": joint_command_msg(np.arange(14.0), 5 * S, [f"j{i}" for i in range(14)]),
    }
    for topic, message in messages.items():
        assert message.__msgtype__ == TOPIC_TYPES[topic]
        decoded = typestore.deserialize_cdr(typestore.serialize_cdr(message, message.__msgtype__), message.__msgtype__)
        assert stamp_to_ns(decoded.header.stamp) == stamp_to_ns(message.header.stamp)
    state = messages["/intervention/state"]
    assert state.mode == 1 and state.active and stamp_to_ns(state.header.stamp) == 5 * S + 7
    label = messages["/episode/reward"]
    assert label.reward == 1.0 and label.success and label.terminal and label.episode_id == "ep-1"
    event = messages["/episode/event"]
    assert event.event == 1 and event.task == "insertion" and event.policy_version == "v000002"
    np.testing.assert_array_equal(messages["/command/executed"].position, np.arange(14.0))

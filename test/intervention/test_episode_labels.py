"""Episode lifecycle and reward labels: no episode closes without a label unless auto-labelled."""

from __future__ import annotations

import pytest
from lwd_intervention.labels import (
    SOURCE_SIM_GROUND_TRUTH,
    EpisodeEventKind,
    EpisodeInfo,
    EpisodeLabeler,
    EpisodeStateError,
    UnlabelledEpisodeError,
)

INFO = EpisodeInfo("ep-0001", "robot-1", "transfer_cube", "pick up the cube", "v000001")


def test_success_label_becomes_reward_one_at_episode_end() -> None:
    labeler = EpisodeLabeler()
    start = labeler.start(INFO, 100)
    assert start.kind is EpisodeEventKind.START and start.info == INFO
    labeler.set_label(True, "operator/joy", 200, note="clean grasp")
    closure = labeler.end(300)
    assert closure.event.kind is EpisodeEventKind.END and closure.event.stamp_ns == 300
    assert closure.label.episode_id == "ep-0001"
    assert closure.label.reward == 1.0 and closure.label.success and closure.label.terminal
    assert closure.label.outcome == "success" and closure.label.note == "clean grasp"
    assert labeler.episode is None


def test_a_later_label_replaces_an_earlier_one() -> None:
    labeler = EpisodeLabeler()
    labeler.start(INFO, 0)
    labeler.set_label(True, "operator/keyboard", 1)
    labeler.set_label(False, "operator/keyboard", 2)
    label = labeler.end(3).label
    assert label.reward == 0.0 and label.outcome == "failure"


def test_ending_without_a_label_is_refused_and_keeps_the_episode_open() -> None:
    labeler = EpisodeLabeler()
    labeler.start(INFO, 0)
    with pytest.raises(UnlabelledEpisodeError, match=r"ep-0001.*no success/failure label"):
        labeler.end(10)
    assert labeler.episode == INFO
    labeler.set_label(False, "operator/joy", 11)
    assert labeler.end(12).label.success is False


def test_auto_labelled_episode_uses_the_simulator_ground_truth() -> None:
    labeler = EpisodeLabeler(auto_label=True)
    labeler.start(INFO, 0)
    with pytest.raises(UnlabelledEpisodeError, match="no ground-truth"):
        labeler.end(5)
    label = labeler.end(6, ground_truth_success=True).label
    assert label.success and label.source == SOURCE_SIM_GROUND_TRUTH and label.stamp_ns == 6


def test_operator_label_wins_over_ground_truth_when_both_exist() -> None:
    labeler = EpisodeLabeler(auto_label=True)
    labeler.start(INFO, 0)
    labeler.set_label(False, "operator/joy", 3)
    label = labeler.end(4, ground_truth_success=True).label
    assert not label.success and label.source == "operator/joy"


def test_rerecord_clears_the_label_and_keeps_the_episode_open() -> None:
    labeler = EpisodeLabeler()
    labeler.start(INFO, 0)
    labeler.set_label(True, "operator/joy", 1)
    event = labeler.rerecord(2)
    assert event.kind is EpisodeEventKind.RERECORD and event.info.episode_id == "ep-0001"
    assert labeler.label is None and labeler.episode == INFO
    with pytest.raises(UnlabelledEpisodeError):
        labeler.end(3)


def test_discard_closes_without_a_label() -> None:
    labeler = EpisodeLabeler()
    labeler.start(INFO, 0)
    assert labeler.discard(5).kind is EpisodeEventKind.DISCARD
    assert labeler.episode is None
    with pytest.raises(EpisodeStateError, match="no episode is open"):
        labeler.set_label(True, "operator/joy", 6)


def test_state_errors_are_specific() -> None:
    labeler = EpisodeLabeler()
    with pytest.raises(EpisodeStateError, match="cannot end"):
        labeler.end(0)
    labeler.start(INFO, 0)
    with pytest.raises(EpisodeStateError, match="still open"):
        labeler.start(EpisodeInfo("ep-0002", "robot-1", "t", "i"), 1)
    with pytest.raises(EpisodeStateError, match="'ep-9' is not open"):
        labeler.set_label(True, "operator/joy", 2, episode_id="ep-9")
    with pytest.raises(ValueError, match="needs a source"):
        labeler.set_label(True, "", 2)

"""End to end: an operator's success press becomes a RewardLabel and the outcome of a recorded bag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lwd_interfaces import lwd_typestore, topics
from lwd_intervention.arbiter import Arbiter, ArbiterConfig, StepInput, TeleopSample
from lwd_intervention.joy import JoyMapper
from lwd_intervention.labels import EpisodeEventRecord, EpisodeLabeler, RewardLabelRecord
from lwd_intervention.messages import (
    episode_event_msg,
    intervention_state_msg,
    joint_command_msg,
    reward_label_msg,
)
from lwd_intervention.modes import SOURCE_LEADER
from lwd_intervention.session import EpisodeTemplate, InterventionSession, SessionResult
from lwd_logger.bag_reader import BagReader
from lwd_logger.recorder import EpisodeRecorder
from lwd_logger.spool import Spool
from lwd_logger.writer import RosbagsWriter

JOINTS = [f"joint_{i}" for i in range(14)]
STEP_NS = 20_000_000
START_NS = 1_764_000_000 * 1_000_000_000
BUTTONS = {"takeover": 0, "hand_back": 1, "success": 2, "failure": 3, "rerecord": 4, "discard": 5, "estop": 6}


class Robot:
    """An intervention session wired to an EpisodeRecorder, the way a composed robot process wires them."""

    def __init__(self, spool_root: Path) -> None:
        self.typestore = lwd_typestore()
        self.recorder = EpisodeRecorder(
            Spool(spool_root), lambda: RosbagsWriter(self.typestore, "mcap"), self.typestore
        )
        self.session = InterventionSession(
            Arbiter(ArbiterConfig(blend_steps=3)),
            EpisodeLabeler(),
            EpisodeTemplate(robot_id="robot-9", task="transfer_cube", instruction="pick up the cube"),
            teleop_source=SOURCE_LEADER,
            auto_start=False,
        )
        self.joy = JoyMapper(BUTTONS, button_count=8)
        self.joy.update([0] * 8)
        self.stamp = START_NS

    def deliver(self, result: SessionResult) -> None:
        assert result.accepted, result.message
        for record in result.records:
            if isinstance(record, RewardLabelRecord):
                message = reward_label_msg(record)
                self.recorder.record(topics.REWARD_LABEL, message.__msgtype__, message, record.stamp_ns)
                self.recorder.handle_reward(message)
            else:
                assert isinstance(record, EpisodeEventRecord)
                self.recorder.handle_event(episode_event_msg(record))

    def press(self, *buttons: int) -> None:
        pressed = [1 if i in buttons else 0 for i in range(8)]
        for event in self.joy.update(pressed).events:
            self.deliver(self.session.handle(event, "operator/joy", self.stamp))
        self.joy.update([0] * 8)

    def step(self, policy_value: float, teleop_value: float | None) -> None:
        self.stamp += STEP_NS
        measured = np.full(14, policy_value)
        teleop = None if teleop_value is None else TeleopSample(np.full(14, teleop_value), self.stamp, SOURCE_LEADER)
        output = self.session.step(StepInput(self.stamp, measured, np.full(14, policy_value), teleop))
        for topic, message in (
            (topics.JOINT_STATES, joint_command_msg(measured, self.stamp, JOINTS)),
            (topics.EXECUTED_COMMAND, joint_command_msg(output.command, self.stamp, JOINTS)),
            (topics.INTERVENTION_STATE, intervention_state_msg(output)),
        ):
            self.recorder.record(topic, message.__msgtype__, message, self.stamp + 1000)


def test_operator_success_label_lands_in_the_recorded_bag(tmp_path: Path) -> None:
    robot = Robot(tmp_path / "spool")
    robot.deliver(robot.session.start_episode(robot.stamp))
    episode_id = robot.session.labeler.episode.episode_id
    for _ in range(5):
        robot.step(0.0, None)
    robot.press(0)
    for _ in range(4):
        robot.step(0.0, 0.01)
    robot.press(1)
    for _ in range(3):
        robot.step(0.0, None)
    stats = robot.session.stats
    robot.press(2)

    (folder,) = robot.recorder.spool.committed()
    reader = BagReader(folder)
    data = reader.info.custom_data
    assert data["lwd.episode_id"] == episode_id
    assert data["lwd.outcome"] == "success"
    assert data["lwd.label_source"] == "operator/joy"
    assert data["lwd.steps"] == str(stats.steps) == "12"
    assert data["lwd.interventions"] == str(stats.interventions) == "1"
    assert data["lwd.intervention_steps"] == str(stats.intervention_steps) == "4"
    assert data["lwd.terminal"] == "true"
    (label,) = [m.msg for m in reader.messages([topics.REWARD_LABEL])]
    assert label.episode_id == episode_id and label.success and label.reward == 1.0 and label.terminal
    states = [m.msg for m in reader.messages([topics.INTERVENTION_STATE])]
    assert [s.active for s in states] == [False] * 5 + [True] * 4 + [False] * 3


def test_unlabelled_end_never_reaches_the_recorder_and_discard_leaves_no_bag(tmp_path: Path) -> None:
    robot = Robot(tmp_path / "spool")
    robot.deliver(robot.session.start_episode(robot.stamp))
    robot.step(0.0, None)
    refused = robot.session.end_with_ground_truth(True, robot.stamp)
    assert not refused.accepted and refused.records == ()
    assert robot.recorder.active
    robot.press(5)
    assert not robot.recorder.active
    assert robot.recorder.spool.committed() == []
    assert robot.recorder.spool.partials() == []


def test_rerecord_restarts_the_recording_and_failure_labels_it(tmp_path: Path) -> None:
    robot = Robot(tmp_path / "spool")
    robot.deliver(robot.session.start_episode(robot.stamp))
    for _ in range(6):
        robot.step(0.0, None)
    robot.press(4)
    for _ in range(2):
        robot.step(0.0, None)
    robot.press(3)
    (folder,) = robot.recorder.spool.committed()
    data = BagReader(folder).info.custom_data
    assert data["lwd.outcome"] == "failure" and data["lwd.steps"] == "2"


def test_a_failure_is_recorded_as_a_cut_not_a_terminal_state(tmp_path: Path) -> None:
    """An operator's failure press, and the simulator's ground truth at its step limit, stop an episode the task
    could have gone on from: the bag says ``lwd.terminal: false``, so the learner bootstraps after it."""
    operator = Robot(tmp_path / "operator")
    operator.deliver(operator.session.start_episode(operator.stamp))
    operator.step(0.0, None)
    operator.press(3)
    simulator = Robot(tmp_path / "simulator")
    simulator.session.labeler = EpisodeLabeler(auto_label=True)
    simulator.deliver(simulator.session.start_episode(simulator.stamp))
    simulator.step(0.0, None)
    simulator.deliver(simulator.session.end_with_ground_truth(False, simulator.stamp))
    for robot, source in ((operator, "operator/joy"), (simulator, "sim/ground_truth")):
        (folder,) = robot.recorder.spool.committed()
        reader = BagReader(folder)
        data = reader.info.custom_data
        assert (data["lwd.outcome"], data["lwd.label_source"], data["lwd.terminal"]) == ("failure", source, "false")
        (label,) = [m.msg for m in reader.messages([topics.REWARD_LABEL])]
        assert not label.success and not label.terminal

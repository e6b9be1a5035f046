"""Replay of recorded executed commands in the MuJoCo ALOHA sim: a bag recorded from the sim replays with no
drift; a bag whose commands do not match its measurements shows drift."""

from __future__ import annotations

import numpy as np
import pytest
from lwd_interfaces import topics
from lwd_logger.command_replay import replay_bag
from lwd_logger.episode_facts import EpisodeInfo
from lwd_logger.errors import BagError

lwd_sim_aloha = pytest.importorskip("lwd_sim.aloha", reason="lwd_sim (MuJoCo ALOHA driver) is not installed")


def replay_in_sim(folder, seed=0):
    return replay_bag(folder, lambda task: lwd_sim_aloha.AlohaSimDriver(task, cameras=(), height=8, width=8), seed)


def record_sim_episode(make_recorder, steps, episode_id, command_offset=0.0, n=40):
    """Drive the sim with a gentle joint sweep and record measurements and executed commands."""
    driver = lwd_sim_aloha.AlohaSimDriver("transfer_cube", cameras=(), height=8, width=8)
    observation = driver.reset(seed=3)
    recorder = make_recorder()
    recorder.start_episode(EpisodeInfo(episode_id=episode_id, robot_id="sim0", task="transfer_cube"))
    start = observation.qpos.copy()
    for i in range(n):
        stamp = observation.stamp_ns + 10**9
        command = start + 0.1 * np.sin(i / 8.0) * np.r_[np.ones(6), 0, np.ones(6), 0]
        measured = steps.joint_state(stamp, 0.0)
        measured.position = observation.qpos.copy()
        executed = steps.joint_state(stamp, 0.0)
        executed.position = command + command_offset
        recorder.record(topics.JOINT_STATES, topics.JOINT_STATE_TYPE, measured, stamp)
        recorder.record(topics.EXECUTED_COMMAND, topics.JOINT_STATE_TYPE, executed, stamp)
        observation = driver.step(command)
    driver.close()
    return recorder.end_episode()


def test_replay_of_sim_recording_has_no_drift(make_recorder, steps):
    folder = record_sim_episode(make_recorder, steps, "sim_ok")
    report = replay_in_sim(folder, seed=3)
    assert report.task == "transfer_cube"
    assert report.steps == 39
    assert report.max_drift < 1e-9


def test_replay_reports_drift_when_commands_disagree(make_recorder, steps):
    folder = record_sim_episode(make_recorder, steps, "sim_bad", command_offset=0.2)
    assert replay_in_sim(folder, seed=3).max_drift > 0.05


def test_replay_without_commands_is_a_clear_error(make_recorder, steps, episode_info):
    recorder = make_recorder()
    recorder.start_episode(episode_info)
    recorder.record(topics.JOINT_STATES, topics.JOINT_STATE_TYPE, steps.joint_state(1, 0.0), 1)
    with pytest.raises(BagError, match="nothing to replay"):
        replay_in_sim(recorder.end_episode())


def test_lwd_bag_replay_command(make_recorder, steps, capsys):
    from lwd.cli import main

    folder = record_sim_episode(make_recorder, steps, "sim_cli")
    assert main(["bag", "replay", str(folder), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "replayed 39 steps" in out
    assert "max |replayed - recorded| joint position: 0.0000" in out

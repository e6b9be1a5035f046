"""A robot records a replay (``lwd_sim.replay``) like a demonstration that fails: the operator drives every step,
the bag carries this scene's object positions as perception labels, and nothing in it is cloned."""

from __future__ import annotations

import numpy as np
from lwd_experiment.control_step import demonstration_commands
from lwd_experiment.sim_robot import RobotSettings, SimRobot
from lwd_interfaces.manifest import MANIFEST_NAME
from lwd_learner.dataset import decode_episode
from lwd_sim.aloha import AlohaSimDriver

TASK = "transfer_cube"
SOURCE, SCENE = 1_000, 1_001


def test_a_robot_records_a_replay_as_a_failed_demonstration_labelled_with_its_own_scene(tmp_path):
    store = tmp_path / "store"
    settings = RobotSettings("robot0", f"file://{store}", tmp_path / "robot0", allow_unsigned=True, tasks=(TASK,))
    robot = SimRobot(settings)
    try:
        demonstrated = robot.run_episode(TASK, SOURCE, "demonstration")
        summary = robot.run_episode(TASK, SCENE, "replay", replay_of=SOURCE)
    finally:
        robot.close()
    commands = demonstration_commands(TASK, SOURCE, max_steps=300)
    assert demonstrated.success and demonstrated.steps == len(commands)
    assert (summary.mode, summary.success, summary.steps) == ("replay", False, len(commands))
    assert summary.policy_version == "" and not summary.errors, "no policy runs in a replay"

    folders = sorted(path.parent for path in store.rglob(MANIFEST_NAME) if "episodes" in path.parts)
    demonstration, episode = sorted(
        (decode_episode(folder, folder.name) for folder in folders), key=lambda e: e.success
    )[::-1]
    assert episode.is_demonstration and not episode.success and episode.steps == len(commands)
    assert episode.operator_executed.all(), "the operator drove every step"
    np.testing.assert_allclose(episode.actions, demonstration.actions, atol=1e-9)
    scene, source = AlohaSimDriver(TASK, cameras=()), AlohaSimDriver(TASK, cameras=())
    scene.reset(SCENE)
    source.reset(SOURCE)
    recorded = episode.object_poses[0, 0, :3]
    np.testing.assert_allclose(recorded, scene.object_poses()["box"][:3], atol=1e-6)
    assert np.linalg.norm(recorded - source.object_poses()["box"][:3]) > 0.02, "the scenes differ"

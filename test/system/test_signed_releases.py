"""Signed releases on a running simulated robot (issue 17, item 4): someone who can write the fleet store but
does not hold the release key cannot make a robot hot-swap anything in, and the version a robot reports is the
one that was signed.
"""

from __future__ import annotations

import logging
import shutil

import pytest
from lwd_experiment.sim_robot import RobotSettings, SimRobot
from lwd_fleet.errors import ReleaseKeyError
from lwd_fleet.layout import channel_file, policy_folder
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.signing import ReleaseKey, generate_key_pair
from lwd_fleet.store import FleetStore
from lwd_policy.checkpoint_tools import init_checkpoint

TASK = "transfer_cube"


def test_a_robot_serves_only_signed_releases_and_keeps_serving_through_an_attack(tmp_path, caplog):
    store_url = f"file://{tmp_path / 'store'}"
    store = FleetStore(store_url)
    private, public, _ = generate_key_pair(tmp_path / "keys")
    trainer = PolicyPublisher(store, ReleaseKey.from_file(private))
    attacker_private, _, attacker_id = generate_key_pair(tmp_path / "attacker")

    def checkpoint(version, seed):
        init_checkpoint(tmp_path / "checkpoints" / version, version, seed=seed)
        return tmp_path / "checkpoints" / version

    trainer.publish(checkpoint("v000001", 0), "v000001", "stable")
    settings = RobotSettings("robot0", store_url, tmp_path / "robot0", trusted_keys=(str(public),), tasks=(TASK,),
                             max_steps=5, record=False)  # fmt: skip
    robot = SimRobot(settings)
    try:
        assert robot.run_episode(TASK, 0, "evaluation").policy_version == "v000001"
        attacks = {
            "v000002": lambda: PolicyPublisher(store).publish(checkpoint("v000002", 2), "v000002", "stable"),
            "v000003": lambda: PolicyPublisher(store, ReleaseKey.from_file(attacker_private)).publish(
                checkpoint("v000003", 3), "v000003", "stable"
            ),
            "v000004": lambda: (
                shutil.copytree(store.path(policy_folder("v000001")), store.path(policy_folder("v000004"))),
                store.replace_bytes(channel_file("stable"), b"v000004\n"),
            ),
        }
        reasons = {
            "v000002": "it is not signed",
            "v000003": f"signed by unknown key {attacker_id}",
            "v000004": "its manifest names version 'v000001'",
        }
        for version, attack in attacks.items():
            attack()
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="lwd_experiment.sim_robot"):
                summary = robot.run_episode(TASK, 1, "evaluation")
            assert (summary.policy_version, robot.runtime.version, summary.errors) == ("v000001", "v000001", [])
            (refusal,) = [r.getMessage() for r in caplog.records if r.name == "lwd_experiment.sim_robot"]
            assert "keeping the current policy" in refusal
            assert f"policy {version} refused: {reasons[version]}" in refusal
            assert not (tmp_path / "robot0" / "policy_cache" / version).exists()

        trainer.publish(checkpoint("v000005", 5), "v000005", "stable")
        assert robot.run_episode(TASK, 2, "evaluation").policy_version == "v000005"
        assert robot.runtime.version == robot.release.version == "v000005"
    finally:
        robot.close()


def test_a_robot_trusting_no_key_does_not_start_unless_unsigned_policies_are_allowed(tmp_path):
    settings = RobotSettings("robot0", f"file://{tmp_path / 'store'}", tmp_path / "robot0", tasks=(TASK,))
    with pytest.raises(ReleaseKeyError, match="no trusted release key configured"):
        SimRobot(settings)
    assert not (tmp_path / "robot0").exists()

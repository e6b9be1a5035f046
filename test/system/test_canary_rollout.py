"""Automatic rollback in the simulated fleet (issue 17, item 5): real ``SimRobot`` stacks, a real file:// store.

A canary share of one half splits two robots by their ids: the canary robot follows the canary channel and runs
the new version, the stable robot keeps the stable version. Their episodes are recorded, uploaded and
catalogued with their ground-truth outcome labels, and the canary monitor, which sees only labels by policy
version, rolls the canary channel back once the canary's interval lies below the stable's; the canary robot then
hot-swaps back to the stable version at its next episode.

Both versions are random-init policies (training one that succeeds takes too long for a test), so what makes
the canary version's episodes fail is the canary robot's operator, who never takes over, while the stable
robot's operator takes over and finishes every episode. The labels are still the real outcomes of real
episodes.
"""

from __future__ import annotations

import json
from pathlib import Path

from lwd_experiment.sim_robot import RobotSettings, SimRobot
from lwd_fleet.canary import ROLLBACK, WAIT, CanaryMonitor, CanaryRule, follows_canary
from lwd_fleet.catalog import Catalog
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.signing import ReleaseKey, generate_key_pair
from lwd_fleet.store import FleetStore
from lwd_policy.checkpoint_tools import init_checkpoint

TASK = "transfer_cube"
SHARE = 0.5
WINDOW = 5


def robot_ids() -> tuple[str, str]:
    """(a canary robot, a stable robot) under SHARE, found by the assignment itself."""
    candidates = [f"robot{index}" for index in range(20)]
    canary = next(robot for robot in candidates if follows_canary(robot, SHARE))
    stable = next(robot for robot in candidates if not follows_canary(robot, SHARE))
    return canary, stable


def sim_robot(store_url: str, work: Path, robot_id: str, helpful_operator: bool, trusted_key: Path) -> SimRobot:
    """A robot of the fleet with canary share SHARE; a helpful operator takes over after a short stall."""
    return SimRobot(
        RobotSettings(
            robot_id=robot_id,
            store_url=store_url,
            work_dir=work / robot_id,
            canary_share=SHARE,
            trusted_keys=(str(trusted_key),),
            tasks=(TASK,),
            max_steps=250 if helpful_operator else 30,
            patience=3 if helpful_operator else 0,
            stall_seconds=0.1,
            drop_seconds=0.1,
            human_like_operator=False,
        )
    )


def test_a_worse_canary_is_rolled_back_and_its_robots_return_to_the_stable_version(tmp_path):
    store_url = f"file://{tmp_path / 'store'}"
    private, public, _ = generate_key_pair(tmp_path / "keys")
    publisher = PolicyPublisher(FleetStore(store_url), ReleaseKey.from_file(private))
    for version, channel, seed in [("v000001", "stable", 0), ("v000002", "canary", 1)]:
        init_checkpoint(tmp_path / "checkpoints" / version, version, seed=seed)
        publisher.publish(tmp_path / "checkpoints" / version, version, channel)
    canary_id, stable_id = robot_ids()
    canary_robot = sim_robot(store_url, tmp_path, canary_id, helpful_operator=False, trusted_key=public)
    stable_robot = sim_robot(store_url, tmp_path, stable_id, helpful_operator=True, trusted_key=public)
    catalog = Catalog(tmp_path / "catalog.sqlite")
    monitor = CanaryMonitor(publisher, catalog, "stable", "canary", CanaryRule(window=WINDOW, margin=0.05))
    try:
        assert (canary_robot.watcher.channel, stable_robot.watcher.channel) == ("canary", "stable")
        runs = [robot.run_episode(TASK, seed=0) for robot in (canary_robot, stable_robot)]
        catalog.ingest(FleetStore(store_url, create=False))
        decision = monitor.check()
        assert decision.action == WAIT and f"fewer than {WINDOW} labelled episodes" in decision.reason
        assert publisher.channel_version("canary") == "v000002"

        runs += [robot.run_episode(TASK, seed) for seed in range(1, WINDOW) for robot in (canary_robot, stable_robot)]
        assert {(s.robot_id, s.policy_version, s.success) for s in runs} == {
            (canary_id, "v000002", False),
            (stable_id, "v000001", True),
        }
        catalog.ingest(FleetStore(store_url, create=False))
        assert catalog.version_outcomes("v000002") == (0, WINDOW)
        assert catalog.version_outcomes("v000001") == (WINDOW, WINDOW)

        decision = monitor.check()
        assert decision.action == ROLLBACK, decision.reason
        assert publisher.channel_version("canary") == "v000001"
        assert publisher.channel_version("stable") == "v000001"
        record = json.loads((tmp_path / "store" / "rollouts" / "v000002.json").read_text())
        assert (record["action"], record["canary"], record["stable"]) == ("rollback", "v000002", "v000001")

        after = canary_robot.run_episode(TASK, seed=WINDOW)
        assert (after.robot_id, after.policy_version) == (canary_id, "v000001"), "the canary robot swapped back"
        assert canary_robot.watcher.channel == "canary"
    finally:
        canary_robot.close()
        stable_robot.close()
        catalog.close()

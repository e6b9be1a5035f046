"""The canary rollout (lwd_fleet.canary): the deterministic robot assignment, the decision rule on Wilson
intervals (wait below the window, no rollback while intervals overlap, rollback when clearly worse, the margin
respected, promotion when not worse), and the monitor on catalog data with known outcomes: it moves the right
channel, logs one line naming both versions and their rates, and records the decision in the store."""

from __future__ import annotations

import json
import logging

import pytest
from lwd_fleet.canary import (
    PROMOTE,
    ROLLBACK,
    WAIT,
    CanaryMonitor,
    CanaryRule,
    decide,
    follows_canary,
    robot_channel,
    robot_fraction,
)
from lwd_fleet.catalog import Catalog
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.store import FleetStore
from lwd_interfaces.manifest import Manifest, build_manifest, write_manifest
from lwd_interfaces.success_rate import wilson_rate

ROBOTS = [f"robot{index}" for index in range(400)]


def test_the_assignment_is_deterministic_and_follows_the_share():
    assert [robot_fraction(robot) for robot in ROBOTS[:5]] == [robot_fraction(robot) for robot in ROBOTS[:5]]
    assert all(0.0 <= robot_fraction(robot) < 1.0 for robot in ROBOTS)
    assert not any(follows_canary(robot, 0.0) for robot in ROBOTS), "share 0: everyone stays on stable"
    assert all(follows_canary(robot, 1.0) for robot in ROBOTS)
    canaries = [robot for robot in ROBOTS if follows_canary(robot, 0.2)]
    assert 0.14 < len(canaries) / len(ROBOTS) < 0.26
    assert set(canaries) <= {robot for robot in ROBOTS if follows_canary(robot, 0.5)}, "a larger share only adds"
    assert {robot_channel(robot, "stable", "canary", 0.2) for robot in canaries} == {"canary"}
    assert robot_channel(ROBOTS[0], "stable", "canary", 0.0) == "stable"
    with pytest.raises(ValueError, match="share"):
        follows_canary("robot0", 1.5)


def rule_decision(canary: tuple[int, int], stable: tuple[int, int], window: int = 20, margin: float = 0.05) -> str:
    """The action of the rule on (successes, labelled) of each version."""
    rule = CanaryRule(window=window, margin=margin)
    return decide("v000002", "v000001", wilson_rate(*canary), wilson_rate(*stable), rule).action


def test_the_rule_waits_until_both_versions_fill_the_window():
    assert rule_decision((0, 19), (20, 20)) == WAIT
    assert rule_decision((0, 20), (19, 19)) == WAIT
    assert rule_decision((0, 20), (20, 20)) == ROLLBACK


def test_the_rule_rolls_back_only_when_the_intervals_are_apart_by_the_margin():
    # 8/20 [22%, 61%] against 16/20 [58%, 92%]: the intervals overlap, the canary looks worse: more episodes.
    assert rule_decision((8, 20), (16, 20)) == WAIT
    # 3/20 [5%, 36%] against 18/20 [70%, 97%]: apart by 34 points, more than the margin.
    assert rule_decision((3, 20), (18, 20)) == ROLLBACK
    assert rule_decision((3, 20), (18, 20), margin=0.4) == WAIT, "a margin wider than the gap: no rollback"
    # 6/40 [7%, 29%] against 26/40 [50%, 78%]: a gap of 21 points, rolled back under 0.2 and not under 0.25.
    assert rule_decision((6, 40), (26, 40), margin=0.2) == ROLLBACK
    assert rule_decision((6, 40), (26, 40), margin=0.25) == WAIT


def test_the_rule_promotes_a_canary_that_is_not_worse():
    assert rule_decision((15, 20), (15, 20)) == PROMOTE
    assert rule_decision((14, 20), (15, 20)) == PROMOTE, "5 points lower: within the margin"
    assert rule_decision((13, 20), (15, 20)) == WAIT
    assert rule_decision((20, 20), (2, 20)) == PROMOTE


@pytest.mark.parametrize("window, margin", [(0, 0.05), (10, -0.1), (10, 1.0)])
def test_a_rule_refuses_impossible_settings(window, margin):
    with pytest.raises(ValueError, match="canary"):
        CanaryRule(window=window, margin=margin)


def make_policy(parent, version):
    """A local policy folder with its manifest (naming its version)."""
    folder = parent / version
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(version.encode() * 8)
    write_manifest(folder, build_manifest(folder, "policy", {"version": version}))
    return folder


def add_episodes(
    catalog: Catalog, version: str, successes: int, failures: int, kind: str = "deployment", batch: str = "a"
) -> None:
    """Catalogue labelled episodes run on ``version`` with the given outcomes (``batch`` keeps their ids apart)."""
    for index in range(successes + failures):
        episode_id = f"{version}-{kind}-{batch}{index}"
        facts = {
            "lwd.robot_id": "robot0",
            "lwd.episode_id": episode_id,
            "lwd.task": "transfer_cube",
            "lwd.episode_kind": kind,
            "lwd.policy_versions": version,
            "lwd.outcome": "success" if index < successes else "failure",
            "lwd.steps": 10,
            "lwd.interventions": 0,
        }
        catalog.add(Manifest("episode", (), facts), f"episodes/robot0/2025-01-01/{episode_id}")


@pytest.fixture
def fleet(tmp_path):
    """(publisher, catalog, store root): v000001 on stable, v000002 on canary."""
    store = FleetStore(f"file://{tmp_path / 'store'}")
    publisher = PolicyPublisher(store)
    publisher.publish(make_policy(tmp_path / "local", "v000001"), "v000001", "stable")
    publisher.publish(make_policy(tmp_path / "local", "v000002"), "v000002", "canary")
    catalog = Catalog(tmp_path / "catalog.sqlite")
    yield publisher, catalog, tmp_path / "store"
    catalog.close()


def test_a_clearly_worse_canary_is_rolled_back_logged_and_recorded(fleet, caplog):
    publisher, catalog, root = fleet
    monitor = CanaryMonitor(publisher, catalog, "stable", "canary", CanaryRule(window=20, margin=0.05))
    add_episodes(catalog, "v000001", 17, 3)
    add_episodes(catalog, "v000002", 2, 10)
    add_episodes(catalog, "v000002", 0, 30, kind="demonstration")  # not deployments: never counted
    add_episodes(catalog, "v000001,v000002", 0, 30)  # swapped mid-episode: counted for neither
    assert monitor.check().action == WAIT
    assert publisher.channel_version("canary") == "v000002"
    assert not (root / "rollouts").exists(), "waiting is not recorded"

    add_episodes(catalog, "v000002", 0, 8, batch="b")
    with caplog.at_level(logging.INFO, logger="lwd_fleet.canary"):
        decision = monitor.check()
    assert decision.action == ROLLBACK
    assert publisher.channel_version("canary") == "v000001"
    assert publisher.channel_version("stable") == "v000001"
    (line,) = [record.getMessage() for record in caplog.records]
    assert line.startswith("canary rollback: channel canary back to v000001: ")
    assert "canary v000002 10% [3%, 30%] (2/20) vs stable v000001 85% [64%, 95%] (17/20), margin 5%" in line
    record = json.loads((root / "rollouts" / "v000002.json").read_text())
    assert record["action"] == "rollback" and (record["canary"], record["stable"]) == ("v000002", "v000001")
    assert record["canary_rate"]["successes"] == 2 and record["canary_rate"]["labelled"] == 20
    assert record["stable_rate"]["low"] == pytest.approx(decision.stable_rate.low)
    assert (record["window"], record["margin"]) == (20, 0.05)
    assert monitor.check() is None, "the canary now serves the stable version: nothing to compare"


def test_a_canary_that_is_not_worse_is_promoted_to_stable(fleet):
    publisher, catalog, root = fleet
    add_episodes(catalog, "v000001", 12, 8)
    add_episodes(catalog, "v000002", 13, 7)
    decision = CanaryMonitor(publisher, catalog, "stable", "canary", CanaryRule(window=20)).check()
    assert decision.action == PROMOTE
    assert (publisher.channel_version("stable"), publisher.channel_version("canary")) == ("v000002", "v000002")
    assert json.loads((root / "rollouts" / "v000002.json").read_text())["action"] == "promote"


def test_no_canary_channel_means_nothing_to_decide(tmp_path):
    store = FleetStore(f"file://{tmp_path / 'store'}")
    publisher = PolicyPublisher(store)
    publisher.publish(make_policy(tmp_path / "local", "v000001"), "v000001", "stable")
    catalog = Catalog(tmp_path / "catalog.sqlite")
    assert CanaryMonitor(publisher, catalog, "stable", "canary", CanaryRule()).check() is None
    with pytest.raises(ValueError, match="differ"):
        CanaryMonitor(publisher, catalog, "stable", "stable", CanaryRule())

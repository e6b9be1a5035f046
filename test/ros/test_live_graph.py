"""The robot stack and the trainer as real ROS 2 nodes on real DDS: one deploy → label → upload → train →
hot-swap cycle, driven the way an operator and ``ros2 launch`` drive it.

The processes, namespaces and parameter files are exactly those that ``bringup.launch.py`` (with
``use_sim:=true``) and ``trainer.launch.py`` describe (derived through test/launch_standin.py, so a
drift between the launch files and this test fails it). Lifecycle nodes are configured and
activated through their real lifecycle services, as bringup's event handlers do. The only
additions are a test-speed overrides file per node (polling periods, a tiny training budget).
"""

from __future__ import annotations

import threading
import time

import pytest
from launch_standin import REPO
from live_graph import (
    bring_up_lifecycle_nodes,
    launch_plan,
    live_graph,
    merged_overrides,
    sim_robot_plan,
    start_launch,
    wait_until,
)
from lwd_interfaces import topics
from lwd_interfaces.ros import contract_qos
from lwd_logger.bag_reader import BagReader
from sensor_msgs.msg import JointState, Joy

from lwd_msgs.msg import EpisodeEvent, InterventionState, PolicyVersion
from lwd_msgs.srv import LabelEpisode

pytestmark = pytest.mark.slow

ROBOT = "robot_a"
TEST_SPEED = {
    "policy_node": {"low_water": 2},
    "bridge_node": {"upload_period_s": 0.5, "channel_period_s": 0.5},
    "trainer_node": {
        "publish_every": 10,
        "batch_size": 8,
        "scan_every": 1,
        "poll_interval": 0.5,
        "agent_json": '{"hidden_dim": 32}',
    },
}
"""Per-node overrides given after the launch's own parameter files: periods, training size, and the chunk
refill level that the tiny test policy's 4-step chunks need."""


def press(probe_publisher, button: int, count: int = 11) -> None:
    """One press and release of gamepad ``button`` on /<robot>/teleop/joy (after an idle message: joy_node's
    first message only sets the arbiter's baseline)."""
    for value in (0, 1, 0):
        message = Joy()
        message.buttons = [value if index == button else 0 for index in range(count)]
        probe_publisher.publish(message)
        time.sleep(0.1)


def test_one_robot_and_the_trainer_run_the_learning_loop_on_a_live_graph(
    tmp_path, policy_store, release_parameters, monkeypatch
):
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    store_url = f"file://{policy_store}"
    checkpoint = policy_store / "policies" / "v000000-bc"
    bringup = sim_robot_plan(ROBOT, checkpoint, store_url, tmp_path / "robots")
    trainer = launch_plan(
        REPO / "launch" / "trainer.launch.py", {"store_url": store_url, "work_dir": str(tmp_path / "trainer")}
    )
    ns = f"/{ROBOT}"
    with live_graph(tmp_path / "logs") as (graph, probe):
        start_launch(graph, bringup, tmp_path / "launch", merged_overrides(TEST_SPEED, release_parameters))
        start_launch(graph, trainer, tmp_path / "launch", merged_overrides(TEST_SPEED, release_parameters))
        assert sorted(graph.running()) == sorted(
            [f"{ROBOT}.{name}" for name in ("policy_node", "recorder_node", "bridge_node", "intervention_node")]
            + [f"{ROBOT}.sim_driver", "trainer_node"]
        )

        def subscribe(msgtype: type, topic: str, relative: bool = True) -> list:
            return probe.collect(msgtype, f"{ns}{topic}" if relative else topic, contract_qos(topic))

        versions = subscribe(PolicyVersion, topics.POLICY_VERSION)
        commands = subscribe(JointState, topics.POLICY_COMMAND)
        first_command: list[float] = []
        probe.node.create_subscription(
            JointState,
            f"{ns}{topics.POLICY_COMMAND}",
            lambda _: first_command or first_command.append(time.monotonic()),
            contract_qos(topics.POLICY_COMMAND),
        )
        joint_states = subscribe(JointState, topics.JOINT_STATES)
        modes = subscribe(InterventionState, topics.INTERVENTION_STATE)
        events = subscribe(EpisodeEvent, topics.EPISODE_EVENT)
        published = probe.collect(PolicyVersion, "/trainer_node/published", contract_qos(topics.POLICY_VERSION))
        joy = probe.node.create_publisher(Joy, f"{ns}{topics.TELEOP_JOY}", contract_qos(topics.TELEOP_JOY))
        teleop = probe.node.create_publisher(
            JointState, f"{ns}{topics.TELEOP_COMMAND}", contract_qos(topics.TELEOP_COMMAND)
        )

        wait_until(lambda: joy.get_subscription_count() and teleop.get_subscription_count(), 30, "teleop inputs", graph)
        activated = bring_up_lifecycle_nodes(probe, bringup)
        assert sorted(activated) == [f"{ns}/{name}" for name in ("bridge_node", "policy_node", "recorder_node")]
        wait_until(lambda: len(commands) >= 25, 60, "the policy's commands", graph)
        # The policy loads its sentence model and warms up at configure, so commands follow activation at once.
        assert first_command[0] - activated[f"{ns}/policy_node"] < 2.0
        start = next(e for e in events if e.event == EpisodeEvent.EVENT_START)
        assert start.instruction, "the episode started without an instruction"

        # Take over with the gamepad; the "leader arm" streams the measured pose meanwhile.
        streaming = threading.Event()

        def lead() -> None:
            while not streaming.is_set():
                if joint_states:
                    command = JointState()
                    command.header.stamp = probe.node.get_clock().now().to_msg()
                    command.name = list(joint_states[-1].name)
                    command.position = list(joint_states[-1].position)
                    teleop.publish(command)
                time.sleep(0.02)

        leader = threading.Thread(target=lead, daemon=True)
        leader.start()
        try:
            press(joy, 4)
            wait_until(lambda: any(m.mode == InterventionState.MODE_TELEOP and m.active for m in modes), 20, "takeover")
            time.sleep(1.0)
            press(joy, 5)
            wait_until(lambda: modes[-1].mode == InterventionState.MODE_AUTONOMOUS, 20, "hand-back", graph)
        finally:
            streaming.set()
            leader.join()
        time.sleep(0.5)
        label = probe.call(
            LabelEpisode,
            f"{ns}/intervention_node/label_episode",
            LabelEpisode.Request(success=True, note="live graph test"),
        )
        assert label.accepted, label.message

        manifests = wait_until(
            lambda: list((policy_store / "episodes" / ROBOT).glob("*/*/manifest.json")),
            60,
            "the bag in the store",
            graph,
        )
        bag = BagReader(manifests[0].parent)
        facts = bag.info.custom_data
        assert facts["lwd.episode_id"] == start.episode_id and facts["lwd.robot_id"] == ROBOT
        assert facts["lwd.outcome"] == "success" and facts["lwd.label_source"] == "operator/service"
        assert facts["lwd.instruction"] == start.instruction
        assert int(facts["lwd.interventions"]) == 1 and int(facts["lwd.intervention_steps"]) > 10
        recorded_modes = [m.msg for m in bag.messages([topics.INTERVENTION_STATE])]
        assert any(m.active for m in recorded_modes) and not recorded_modes[0].active
        assert sum(1 for _ in bag.messages([topics.camera_topic("top")])) > 10
        assert "lwd.lost_samples" in facts  # counted per topic; how many depends on the load (bench/ros_graph.py)

        trained = wait_until(lambda: {m.version for m in published} - {"v000000-bc"}, 180, "a trained version", graph)
        running = wait_until(
            lambda: {m.version for m in versions if m.channel == "running"} & {m.version for m in published},
            120,
            f"the robot to announce it runs a trained version ({sorted(trained)[:3]}...)",
            graph,
        )
        assert "v000000-bc" not in running
        wait_until(lambda: any(c.header.stamp.sec > 0 for c in commands[-5:]), 10, "commands after the swap", graph)


def test_two_simulated_robots_on_one_graph_never_cross_topics_bags_or_labels(
    tmp_path, policy_store, release_parameters, monkeypatch
):
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    sim = launch_plan(
        REPO / "launch" / "sim.launch.py",
        {
            "robots": "2",
            "checkpoint": str(policy_store / "policies" / "v000000-bc"),
            "store_url": f"file://{policy_store}",
            "data_dir": str(tmp_path / "robots"),
        },
    )
    robots = ("sim_01", "sim_02")
    with live_graph(tmp_path / "logs") as (graph, probe):
        start_launch(graph, sim, tmp_path / "launch", merged_overrides(TEST_SPEED, release_parameters))
        assert len(graph.running()) == 10
        starts = {
            robot: probe.collect(EpisodeEvent, f"/{robot}{topics.EPISODE_EVENT}", contract_qos(topics.EPISODE_EVENT))
            for robot in robots
        }
        bring_up_lifecycle_nodes(probe, sim)
        for robot in robots:
            wait_until(
                lambda r=robot: any(e.event == EpisodeEvent.EVENT_START for e in starts[r]),
                60,
                f"{robot}'s episode",
                graph,
            )
        time.sleep(1.0)
        outcomes = {"sim_01": True, "sim_02": False}
        for robot, success in outcomes.items():
            label = probe.call(
                LabelEpisode, f"/{robot}/intervention_node/label_episode", LabelEpisode.Request(success=success)
            )
            assert label.accepted, label.message
        for robot, success in outcomes.items():
            manifests = wait_until(
                lambda r=robot: list((policy_store / "episodes" / r).glob("*/*/manifest.json")),
                60,
                f"{robot}'s bag in the store",
                graph,
            )
            (manifest,) = manifests
            facts = BagReader(manifest.parent).info.custom_data
            first = next(e for e in starts[robot] if e.event == EpisodeEvent.EVENT_START)
            assert facts["lwd.robot_id"] == robot and facts["lwd.episode_id"] == first.episode_id
            assert facts["lwd.outcome"] == ("success" if success else "failure")
        assert sorted(p.name for p in (policy_store / "episodes").iterdir()) == list(robots)

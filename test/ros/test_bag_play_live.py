"""``lwd bag play`` on a live ROS 2 graph: a subprocess player, rclpy subscribers in this process.

Every recorded message of the checked topics must arrive under the robot's namespace, in order, with the
recorded bytes, at about the asked rate; ``--clock`` must drive ``/clock`` with the recorded times, and
Ctrl-C must end a looping player with exit code 0. DDS stays on loopback, on a domain of each test's own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from learner.conftest import write_episode_bag
from live_graph import free_domain_id
from lwd_interfaces import topics
from lwd_logger.bag_reader import BagReader

LWD = Path(sys.executable).with_name("lwd")
STEPS = 150
STEP_S = 0.02
"""write_episode_bag records one step every 20 ms."""


@pytest.fixture
def domain_id(monkeypatch: pytest.MonkeyPatch) -> int:
    """A ROS domain of this test alone, set (loopback only) for this process and its children."""
    domain = free_domain_id()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return domain


@pytest.fixture
def node(domain_id: int) -> Iterator[Any]:
    """An rclpy node in a context of its own (no signal handlers), destroyed after the test."""
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    context = Context()
    rclpy.init(context=context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
    test_node = rclpy.create_node("bag_play_test", context=context)
    yield test_node
    test_node.destroy_node()
    rclpy.try_shutdown(context=context)


def player(bag: Path, *args: str, sigint: signal.Handlers = signal.SIG_DFL) -> subprocess.Popen[str]:
    """``lwd bag play BAG ARGS`` with this process's environment (the ROS wheels need its library path), started
    with SIGINT set to ``sigint`` (a job a non-interactive shell puts in the background starts with it ignored)."""
    command = [str(LWD), "bag", "play", str(bag), *args]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
    )


def dds_padded(cdr: bytes) -> bytes:
    """``cdr`` as a subscriber receives it: DDS zero-pads serialized payloads to a multiple of 4 bytes."""
    return cdr + bytes(-len(cdr) % 4)


def test_play_publishes_every_message_in_order_with_its_bytes_at_the_rate(tmp_path, node):
    from lwd_interfaces.ros import contract_qos
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState

    from lwd_msgs.msg import PolicyVersion

    bag = write_episode_bag(tmp_path / "episode", steps=STEPS)
    reader = BagReader(bag)
    checked = {topics.EXECUTED_COMMAND: JointState, topics.POLICY_VERSION: PolicyVersion}
    received: dict[str, list[tuple[float, bytes]]] = {topic: [] for topic in checked}
    for topic, message_type in checked.items():
        node.create_subscription(
            message_type,
            f"/robot_x{topic}",
            lambda data, topic=topic: received[topic].append((time.monotonic(), data)),
            contract_qos(topic, depth=STEPS),
            raw=True,
        )
    clock_times: list[int] = []
    node.create_subscription(
        Clock,
        "/clock",
        lambda tick: clock_times.append(tick.clock.sec * 10**9 + tick.clock.nanosec),
        QoSProfile(depth=STEPS, reliability=ReliabilityPolicy.BEST_EFFORT),
    )
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)

    process = player(bag, "--namespace", "robot_x", "--rate", "2", "--clock", "--delay", "5")
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    drain = time.monotonic() + 1.0
    while time.monotonic() < drain:
        executor.spin_once(timeout_sec=0.05)
    output = process.communicate(timeout=10)[0]
    assert process.returncode == 0, output
    assert f"done: {reader.info.message_count} messages published" in output, output

    for topic in checked:
        recorded = [message.data for message in reader.raw_messages([topic])]
        assert [dds_padded(data) for data in recorded] == [data for _, data in received[topic]], topic
    arrivals = [at for at, _ in received[topics.EXECUTED_COMMAND]]
    half_span = (STEPS - 1) * STEP_S / 2
    assert 0.75 * half_span <= arrivals[-1] - arrivals[0] <= half_span + 1.0, arrivals[-1] - arrivals[0]
    log_times = {message.log_time_ns for message in reader.raw_messages()}
    assert len(clock_times) >= STEPS // 2 and set(clock_times) <= log_times
    assert clock_times == sorted(clock_times)


@pytest.mark.parametrize("inherited", [signal.SIG_DFL, signal.SIG_IGN])
def test_ctrl_c_ends_a_looping_player_with_exit_code_0(tmp_path, domain_id, inherited):
    """Even when the player starts with SIGINT ignored, as a background job of a script does: a SIGINT sent to it
    still stops it."""
    bag = write_episode_bag(tmp_path / "episode", steps=20)
    process = player(bag, "--loop", sigint=inherited)
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("published"):
                break
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0]
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "interrupted after" in output and "Traceback" not in output, output


def test_message_class_imports_installed_types_and_names_missing_ones():
    from lwd_logger.errors import PlaybackError
    from lwd_logger.ros_player import message_class
    from sensor_msgs.msg import JointState

    assert message_class("sensor_msgs/msg/JointState") is JointState
    assert message_class("sensor_msgs/JointState") is JointState
    with pytest.raises(PlaybackError, match="not installed"):
        message_class("no_such_msgs/msg/Thing")
    with pytest.raises(PlaybackError, match="not a ROS 2 message type name"):
        message_class("JointState")

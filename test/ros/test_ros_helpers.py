"""lwd_interfaces.ros against real rclpy: contract QoS, parameter descriptors, and publishing built messages."""

from __future__ import annotations

import numpy as np
import pytest
from live_graph import Probe, free_domain_id, wait_until
from lwd_interfaces import topics
from lwd_interfaces.messages import joint_state
from lwd_interfaces.ros import contract_qos, describe, message_class, publish_message, qos_profile
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from sensor_msgs.msg import JointState


def test_qos_profiles_match_the_contract():
    latched = contract_qos(topics.POLICY_VERSION)
    assert (latched.reliability, latched.durability, latched.depth) == (
        ReliabilityPolicy.RELIABLE,
        DurabilityPolicy.TRANSIENT_LOCAL,
        1,
    )
    camera = contract_qos(topics.camera_topic("top"), depth=50)
    assert (camera.reliability, camera.durability, camera.depth) == (
        ReliabilityPolicy.BEST_EFFORT,
        DurabilityPolicy.VOLATILE,
        50,
    )
    assert qos_profile(topics.RELIABLE).reliability == ReliabilityPolicy.RELIABLE


def test_describe_builds_read_only_descriptors_with_typed_ranges():
    plain = describe("spool folder")
    assert plain.read_only and plain.description == "spool folder" and not plain.integer_range
    (interval,) = describe("period [s]", low=0.1, high=60.0).floating_point_range
    assert (interval.from_value, interval.to_value) == (0.1, 60.0)
    (counts,) = describe("retries", low=1, high=100).integer_range
    assert (counts.from_value, counts.to_value) == (1, 100)
    assert describe("storage", choices=("mcap", "sqlite3")).additional_constraints == "one of: mcap, sqlite3"
    with pytest.raises(ValueError, match="both bounds"):
        describe("half a range", low=1.0)


def test_a_message_built_off_ros_arrives_as_the_rclpy_message(monkeypatch):
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    probe = Probe(free_domain_id())
    try:
        received = probe.collect(JointState, "/joint_states", contract_qos(topics.JOINT_STATES))
        publisher = probe.node.create_publisher(JointState, "/joint_states", contract_qos(topics.JOINT_STATES))
        built = joint_state(1_500_000_000, ["a", "b"], np.array([0.25, -1.0]), np.array([0.0, 2.0]), "world")

        def arrived() -> bool:
            publish_message(publisher, built)
            return bool(received)

        wait_until(arrived, 10, "the published message")
    finally:
        probe.close()
    message = received[0]
    assert (message.header.stamp.sec, message.header.stamp.nanosec, message.header.frame_id) == (
        1,
        500_000_000,
        "world",
    )
    assert list(message.name) == ["a", "b"] and list(message.position) == [0.25, -1.0]
    assert list(message.velocity) == [0.0, 2.0]
    assert message_class("sensor_msgs/msg/JointState") is JointState

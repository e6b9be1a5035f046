"""rclpy helpers shared by the LWD nodes: QoS profiles of the topic contract, parameter descriptors, spinning.

Only importable where ROS 2 is sourced (it imports rclpy and rcl_interfaces); the
rclpy-free contract it serves lives in :mod:`lwd_interfaces.topics`. The test suite
checks the nodes' use of it statically.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from lwd_interfaces import topics

if TYPE_CHECKING:
    from rclpy.node import Node

_PROFILES: dict[str, tuple[ReliabilityPolicy, DurabilityPolicy, int]] = {
    topics.SENSOR_DATA: (ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE, 5),
    topics.RELIABLE: (ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, 10),
    topics.LATCHED: (ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL, 1),
}


def qos_profile(kind: str, depth: int | None = None) -> QoSProfile:
    """The rclpy profile of a QoS class (``topics.SENSOR_DATA`` | ``RELIABLE`` | ``LATCHED``).

    ``depth`` overrides the class's history depth for this endpoint only (a recorder keeps
    more samples queued); depth does not affect whether publishers and subscribers match.
    """
    reliability, durability, default_depth = _PROFILES[kind]
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=default_depth if depth is None else depth,
        reliability=reliability,
        durability=durability,
    )


def contract_qos(topic: str, depth: int | None = None) -> QoSProfile:
    """The profile every publisher and subscriber of contract ``topic`` (absolute name) uses."""
    return qos_profile(topics.topic_qos(topic), depth)


def describe(
    description: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: Collection[str] = (),
) -> ParameterDescriptor:
    """A read-only parameter descriptor; rclpy then validates the value when the node declares it.

    rclpy enforces the type of the declared default (a YAML ``5`` for a float parameter is
    rejected) and the inclusive range ``[low, high]``: int bounds give an integer range, float
    bounds a floating-point range, so the bounds must have the parameter's type. ``choices`` are
    listed in ``additional_constraints``; rclpy does not enforce them, the node checks them with
    :func:`require_choice`. Read-only, because the nodes read their parameters once: a change
    needs a restart (or a lifecycle cleanup and configure), not a silent ``ros2 param set``.
    """
    descriptor = ParameterDescriptor(description=description, read_only=True)
    if choices:
        descriptor.additional_constraints = "one of: " + ", ".join(choices)
    if low is None and high is None:
        return descriptor
    if low is None or high is None or low > high:
        raise ValueError(f"{description!r}: a range needs both bounds, low <= high (got {low}, {high})")
    if isinstance(low, int) and isinstance(high, int):
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
    else:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    return descriptor


def require_choice(name: str, value: str, choices: Collection[str]) -> str:
    """``value`` if it is one of ``choices``; otherwise a ValueError naming the parameter."""
    if value not in choices:
        raise ValueError(f"parameter {name!r} must be one of {sorted(choices)}, got {value!r}")
    return value


def spin_until_shutdown(node: Node, interrupted: str = "interrupted") -> None:
    """Spin ``node`` until shutdown or Ctrl-C, then destroy it: the body of every node's ``main``.

    Cleanup (saving state, stopping threads) belongs in the node's ``destroy_node``, so it runs
    however spinning ended.
    """
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        node.get_logger().info(interrupted)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()

"""rclpy helpers shared by the LWD nodes: contract QoS, publishers and subscriptions, parameters, spinning.

Nodes subscribe and advertise contract topics by their absolute names (the helpers apply the
namespace and the contract's QoS), declare their parameter table in one call, publish messages
built by the rclpy-free builders as CDR bytes, and run through :func:`run_node`.

Only importable where rclpy is (a ROS 2 install, or the Jazzy PyPI wheels that ``make test``
installs); the rclpy-free contract it serves lives in :mod:`lwd_interfaces.topics`. The live
node-graph tests run every node through :func:`run_node`.
"""

from __future__ import annotations

import array
import importlib
import signal
import sys
import threading
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode
from rclpy.logging import get_logger
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from lwd_interfaces import lwd_typestore, topics
from lwd_interfaces.parameters import ParameterTable

if TYPE_CHECKING:
    from rclpy.node import Node
    from rclpy.publisher import Publisher
    from rclpy.subscription import Subscription

_PROFILES: dict[str, tuple[ReliabilityPolicy, DurabilityPolicy, int]] = {
    topics.SENSOR_DATA: (ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE, 5),
    topics.RELIABLE: (ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, 10),
    topics.LATCHED: (ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL, 1),
}


def message_class(msgtype: str) -> type:
    """The generated rclpy class of ``pkg/msg/Type`` (or ``pkg/Type``); ValueError when malformed or not installed.

    What ``rosidl_runtime_py.utilities.get_message`` does; that package is not among the PyPI wheels.
    """
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts.insert(1, "msg")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"{msgtype!r} is not a ROS 2 message type name like pkg/msg/Type")
    package, kind, name = parts
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"message type {msgtype} is not installed here ({error})") from error


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


def subscribe(
    node: Node, msgtype: type, topic: str, callback: Callable[..., None], *, depth: int | None = None, raw: bool = False
) -> Subscription:
    """Subscribe ``node`` to contract ``topic`` (absolute name) in its namespace, with the contract's QoS."""
    return node.create_subscription(msgtype, topics.relative(topic), callback, contract_qos(topic, depth), raw=raw)


def advertise(node: Node, msgtype: type, topic: str) -> Publisher:
    """A publisher of contract ``topic`` in ``node``'s namespace with the contract's QoS (a managed one on a
    lifecycle node, silent until the node is active)."""
    create = node.create_lifecycle_publisher if isinstance(node, LifecycleNode) else node.create_publisher
    return create(msgtype, topics.relative(topic), contract_qos(topic))


def publish_message(publisher: Publisher, message: object) -> None:
    """Publish a message built off ROS (a ``lwd_interfaces`` typestore object) as its CDR bytes.

    The typestore's CDR is rclpy's, so both hosts share one builder per message
    (``lwd_interfaces.messages``, ``lwd_intervention.messages``) instead of two.
    """
    publisher.publish(bytes(lwd_typestore().serialize_cdr(message, message.__msgtype__)))


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
    listed in ``additional_constraints``; rclpy does not enforce them, :func:`declare_parameters`
    does. Read-only, because the nodes read their parameters once: a change needs a restart
    (or a lifecycle cleanup and configure), not a silent ``ros2 param set``.
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


def declare_parameters(node: Node, table: ParameterTable) -> dict[str, Any]:
    """Declare every parameter of ``table`` on ``node`` (read-only, with its range) and return the values.

    rclpy enforces the types and ranges of overrides; the choices, which rclpy only lists, are
    checked here, so a bad value raises ParameterError naming the parameter.
    """
    values = {}
    for parameter in table:
        low, high = parameter.low, parameter.high
        if isinstance(parameter.default, float) and low is not None:
            low, high = float(low), float(high)
        descriptor = describe(parameter.description, low=low, high=high, choices=parameter.choices)
        value = node.declare_parameter(parameter.name, parameter.default, descriptor).value
        values[parameter.name] = parameter.check(list(value) if isinstance(value, array.array) else value)
    return values


_STOP_POLL_S = 0.1


def init_until_signalled(args: list[str] | None = None) -> threading.Event:
    """``rclpy.init`` without rclpy's signal handlers; the returned event is set by SIGINT or SIGTERM.

    The caller polls the event between spins and tears down in order, node before context, so
    cleanup code can still use the node (see :func:`run_node`).
    """
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    return stop


def run_node(make_node: Callable[[], Node], args: list[str] | None = None, interrupted: str = "interrupted") -> None:
    """The body of every node's ``main``: init, build the node, spin until asked to stop, clean up; exit 0 on Ctrl-C.

    SIGINT or SIGTERM (as ``ros2 launch`` sends on Ctrl-C) only asks the node to stop; the executor
    notices within a tenth of a second, between callbacks. The node is then destroyed while its
    context is still valid, and only after that is the context shut down. (rclpy's own handlers
    shut the context down first, from the signal, so a node failed on whichever call next touched
    it: a hang inside ``destroy_node``, or a conversion error out of the executor's wait.) A node that
    cannot be built or fails while spinning logs one line naming the error and exits 1, without a
    traceback. Cleanup (saving state, stopping threads) belongs in the node's ``destroy_node``, so it
    runs however spinning ended.
    """
    stop = init_until_signalled(args)
    executor = SingleThreadedExecutor()
    node: Node | None = None
    failed = False
    try:
        node = make_node()
        executor.add_node(node)
        while not stop.is_set():
            executor.spin_once(timeout_sec=_STOP_POLL_S)
    except Exception as error:
        logger = node.get_logger() if node is not None else get_logger("lwd")
        logger.fatal(f"{type(error).__name__}: {error}")
        interrupted = "stopped by the error above"
        failed = True
    finally:
        # The executor lets go of the node's handles first (it holds them between waits), then the node
        # goes while its context is still valid, and the context last.
        executor.shutdown()
        if node is not None:
            print(f"[{node.get_fully_qualified_name()}] {interrupted}", file=sys.stderr, flush=True)
            node.destroy_node()
        rclpy.try_shutdown()
    if failed:
        sys.exit(1)

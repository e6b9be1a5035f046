"""The rclpy side of ``lwd bag play``: one publisher per played topic, publishing the recorded bytes on schedule.

Names and timing come from :class:`lwd_logger.playback.Playback` (no rclpy there); this module turns
type names into rclpy message classes, picks each topic's QoS and publishes. Messages go out as
recorded (``Publisher.publish`` takes serialized bytes), header stamps untouched. With ``clock`` it
also publishes ``rosgraph_msgs/Clock`` on ``/clock`` at each message's recorded time, so nodes with
``use_sim_time`` follow the bag. Only importable where rclpy is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import rclpy
from lwd_interfaces import topics
from lwd_interfaces.ros import contract_qos, qos_profile
from lwd_interfaces.ros import message_class as ros_message_class
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.qos import QoSProfile, ReliabilityPolicy

from lwd_logger.errors import PlaybackError
from lwd_logger.playback import Playback, PlayedMessage, WallClock

CLOCK_TOPIC = "/clock"
CLOCK_TYPE = "rosgraph_msgs/msg/Clock"
CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
"""What ``ros2 bag play --clock`` uses (rclcpp's ClockQoS); every ROS time source subscribes best effort."""
ACK_TIMEOUT = Duration(seconds=2)
"""How long each reliable publisher may take, after the last message, to have it acknowledged before exit."""


@dataclass(frozen=True)
class PlaySummary:
    """How a playback ended: messages published, wall seconds from the first one due, whether Ctrl-C ended it."""

    published: int
    wall_s: float
    interrupted: bool


def message_class(msgtype: str) -> type:
    """The rclpy class of ``msgtype``; a :class:`PlaybackError` when it is malformed or not installed."""
    try:
        return ros_message_class(msgtype)
    except ValueError as error:
        raise PlaybackError(str(error)) from error


def topic_qos(source: str) -> QoSProfile:
    """The contract profile of a recorded contract topic (bags keep contract names); reliable for any other topic."""
    try:
        return contract_qos(source)
    except KeyError:
        return qos_profile(topics.RELIABLE)


def play(
    playback: Playback,
    *,
    clock: bool = False,
    delay_s: float = 0.0,
    on_published: Callable[[int, PlayedMessage], None] | None = None,
) -> PlaySummary:
    """Publish ``playback``'s messages on the ROS graph (``ROS_DOMAIN_ID`` as set) as they fall due.

    ``delay_s`` waits after creating the publishers, so that subscribers discover them before the
    first message. ``on_published(count, message)`` runs after each message. Ctrl-C ends playback
    early and is reported in the summary, not raised. rclpy runs in its own context without signal
    handlers, so Ctrl-C arrives only as KeyboardInterrupt (never as a context shut down mid-publish).
    PlaybackError if a message type is not installed.
    """
    context = Context()
    rclpy.init(context=context)
    node = None
    published, begin, interrupted = 0, time.monotonic(), False
    try:
        node = rclpy.create_node("lwd_bag_player", context=context)
        publishers = {
            topic.name: node.create_publisher(message_class(topic.msgtype), topic.name, topic_qos(topic.source))
            for topic in playback.topics.values()
        }
        clock_publisher = node.create_publisher(message_class(CLOCK_TYPE), CLOCK_TOPIC, CLOCK_QOS) if clock else None
        time.sleep(delay_s)
        begin = time.monotonic()
        for message in playback.messages(WallClock()):
            if clock_publisher is not None:
                tick = clock_publisher.msg_type()
                tick.clock.sec, tick.clock.nanosec = divmod(message.log_time_ns, 10**9)
                clock_publisher.publish(tick)
            publishers[message.topic].publish(message.data)
            published += 1
            if on_published is not None:
                on_published(published, message)
        for publisher in publishers.values():
            publisher.wait_for_all_acked(ACK_TIMEOUT)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
    return PlaySummary(published, time.monotonic() - begin, interrupted)

"""``recorder_node``: the ROS 2 host of ``EpisodeRecorder``.

Subscribes with ``raw=True`` to the per-step topics, the policy topics, the
teleop topics and every configured camera, and hands the serialized bytes to
the recorder without decoding them. Subscriptions use the relative names, so
they resolve in the robot's namespace (``/<robot_id>/joint_states``); the bag
records every topic under its absolute contract name (``/joint_states``).
``extra_topics`` are handled the same way (``tf`` or ``/tf``: subscribed as
``/<robot_id>/tf``, recorded as ``/tf``). ``/episode/event`` starts, ends,
discards and rerecords episodes; ``/episode/reward`` labels them. At startup
it recovers interrupted recordings left in the spool. All decisions live in
the cores (``recorder``, ``recovery``, ``spool``); this file only wires them.
"""

from __future__ import annotations

import dataclasses
import importlib

import rclpy
from lwd_interfaces import lwd_typestore, topics
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

from lwd_logger.errors import RecorderError, SpoolFullError
from lwd_logger.recorder import EVENT_END, EVENT_START, EpisodeRecorder
from lwd_logger.recovery import recover_spool
from lwd_logger.spool import Spool
from lwd_logger.writer import RosbagsWriter

NODE_NAME = "recorder_node"
RECORDED_TOPICS = (
    topics.JOINT_STATES,
    topics.EXECUTED_COMMAND,
    topics.POLICY_COMMAND,
    topics.ACTION_CHUNK,
    topics.INTERVENTION_STATE,
    topics.POLICY_VERSION,
    topics.TELEOP_JOY,
    topics.TELEOP_COMMAND,
)


def get_message(msgtype: str) -> type:
    """The generated rclpy message class of a ``pkg/msg/Name`` type (what raw subscriptions need for their type)."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class RecorderNode(Node):
    """Thin rclpy host: raw subscriptions into the recorder core."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        spool_dir = str(self.declare_parameter("spool_dir", "spool").value)
        self.robot_id = str(self.declare_parameter("robot_id", "robot-0").value)
        self.cameras = tuple(self.declare_parameter("cameras", ["top"]).value)
        extra_topics = list(self.declare_parameter("extra_topics", [""]).value)
        extra_types = list(self.declare_parameter("extra_topic_types", [""]).value)
        storage = str(self.declare_parameter("storage", "mcap").value)
        compression = str(self.declare_parameter("compression", "none").value)
        flush_period_s = float(self.declare_parameter("flush_period_s", 1.0).value)
        label_timeout_s = float(self.declare_parameter("label_timeout_s", 5.0).value)
        max_spool_bytes = int(self.declare_parameter("max_spool_bytes", 0).value)
        min_free_bytes = int(self.declare_parameter("min_free_bytes", 2_000_000_000).value)
        self.episode_kind = str(self.declare_parameter("episode_kind", "deployment").value)
        if len(extra_topics) != len(extra_types):
            raise ValueError("extra_topics and extra_topic_types must list the same number of entries")
        extras = {"/" + t.lstrip("/"): m for t, m in zip(extra_topics, extra_types, strict=True) if t}

        self.typestore = lwd_typestore()
        spool = Spool(spool_dir, max_bytes=max_spool_bytes or None, min_free_bytes=min_free_bytes)
        for folder in recover_spool(spool, self.typestore):
            self.get_logger().warning(f"recovered interrupted episode {folder.name} as incomplete")
        self.recorder = EpisodeRecorder(
            spool,
            lambda: RosbagsWriter(self.typestore, storage, compression),
            self.typestore,
            flush_period_s=flush_period_s,
            label_timeout_s=label_timeout_s,
        )
        recorded = {topic: topics.TOPIC_TYPES[topic] for topic in RECORDED_TOPICS}
        recorded.update({topics.camera_topic(camera): topics.IMAGE_TYPE for camera in self.cameras})
        recorded.update(extras)
        # Subscribe by the relative name, so the robot's namespace applies; record under the
        # absolute contract name, so every robot's bags look alike.
        for topic, msgtype in recorded.items():
            qos = qos_profile_sensor_data if topic.startswith(topics.CAMERA_PREFIX) else 10
            self.create_subscription(
                get_message(msgtype),
                topics.relative(topic),
                lambda raw, t=topic, m=msgtype: self._record(t, m, raw),
                qos,
                raw=True,
            )
        event_type = topics.TOPIC_TYPES[topics.EPISODE_EVENT]
        reward_type = topics.TOPIC_TYPES[topics.REWARD_LABEL]
        self.create_subscription(
            get_message(event_type), topics.relative(topics.EPISODE_EVENT), self._on_event, 10, raw=True
        )
        self.create_subscription(
            get_message(reward_type), topics.relative(topics.REWARD_LABEL), self._on_reward, 10, raw=True
        )
        self.create_timer(0.1, self._on_tick)

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _record(self, topic: str, msgtype: str, raw: bytes) -> None:
        try:
            self.recorder.record(topic, msgtype, raw, self._now_ns())
        except OSError as error:
            self.get_logger().error(
                f"RECORDING FAILED on {topic}: {error}; data up to the last flush is kept for recovery",
                throttle_duration_sec=5.0,
            )

    def _on_event(self, raw: bytes) -> None:
        msgtype = topics.TOPIC_TYPES[topics.EPISODE_EVENT]
        event = self.typestore.deserialize_cdr(raw, msgtype)
        if not event.robot_id:
            event = dataclasses.replace(event, robot_id=self.robot_id)
        received = self._now_ns()
        try:
            if event.event != EVENT_START:
                self.recorder.record(topics.EPISODE_EVENT, msgtype, raw, received)
            self.recorder.handle_event(event, cameras=self.cameras, episode_kind=self.episode_kind)
            if event.event == EVENT_START:
                self.recorder.record(topics.EPISODE_EVENT, msgtype, raw, received)
            if event.event == EVENT_END and self.recorder.active:
                self.get_logger().info(f"episode {event.episode_id} ended; waiting for its reward label")
        except SpoolFullError as error:
            self.get_logger().error(str(error))
        except (RecorderError, ValueError) as error:
            self.get_logger().error(f"episode event refused: {error}")

    def _on_reward(self, raw: bytes) -> None:
        msgtype = topics.TOPIC_TYPES[topics.REWARD_LABEL]
        self.recorder.record(topics.REWARD_LABEL, msgtype, raw, self._now_ns())
        committed = self.recorder.handle_reward(self.typestore.deserialize_cdr(raw, msgtype))
        if committed is not None:
            self.get_logger().info(f"episode committed: {committed}")

    def _on_tick(self) -> None:
        committed = self.recorder.tick()
        if committed is not None:
            self.get_logger().warning(f"episode {committed.name} committed without a label (incomplete)")


def main(args: list[str] | None = None) -> None:
    """Run the recorder node until shutdown; an open episode is left for recovery, never passed off as complete."""
    rclpy.init(args=args)
    node = RecorderNode()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        node.get_logger().info("interrupted; an open episode is recovered as incomplete on the next start")
    finally:
        node.destroy_node()
        rclpy.try_shutdown()

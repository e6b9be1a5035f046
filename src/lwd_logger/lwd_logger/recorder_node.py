"""``recorder_node``: the ROS 2 host of ``EpisodeRecorder``, a lifecycle node.

- **configure** validates the parameters, recovers interrupted recordings left in
  the spool (as incomplete episodes) and builds the recorder with the bag writer
  backend: ``rosbag2_py`` where it is importable, else ``rosbags``.
- **activate** subscribes with ``raw=True`` to the per-step topics, the policy
  topics, the teleop topics and every configured camera, and hands the serialized
  bytes to the recorder without decoding them. ``/episode/event`` starts, ends,
  discards and rerecords episodes; ``/episode/reward`` labels them.
- **deactivate** unsubscribes and commits an open episode (incomplete unless
  already labelled), so nothing is left half-written.

No callback lets an error escape the executor: a failed write (a full disk) is
closed by the core as an incomplete episode and logged here at ERROR
(``RECORDING FAILED``); while the disk stays full, starts are refused and
logged (``SPOOL FULL``); the first start after space returns records again.

Subscriptions use the relative names, so they resolve in the robot's namespace
(``/<robot_id>/joint_states``); the bag records every topic under its absolute
contract name (``/joint_states``). ``extra_topics`` are handled the same way
(``tf`` or ``/tf``: subscribed as ``/<robot_id>/tf``, recorded as ``/tf``), with a
best-effort subscription that matches any publisher. Receive times come from the
node clock, so ``use_sim_time`` works. All decisions live in the cores
(``recorder``, ``recovery``, ``spool``); this file only wires them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from lwd_interfaces import lwd_typestore, topics
from lwd_interfaces.ros import (
    declare_parameters,
    message_class,
    qos_profile,
    run_node,
    subscribe,
)
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.subscription import Subscription
from rclpy.timer import Timer

from lwd_logger.errors import LoggerError
from lwd_logger.parameters import RECORDER_NODE, recorded_topics
from lwd_logger.recorder import EVENT_END, EVENT_START, EpisodeRecorder
from lwd_logger.recovery import recover_spool
from lwd_logger.sample_loss import format_losses
from lwd_logger.spool import Spool
from lwd_logger.writer_backend import writer_factory

NODE_NAME = "recorder_node"
QUEUE_DEPTH = 50
"""History depth of every recording subscription: one second at 50 Hz, so a slow flush drops nothing."""


class RecorderNode(LifecycleNode):
    """Thin rclpy lifecycle host: raw subscriptions into the recorder core."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.parameters = declare_parameters(self, RECORDER_NODE)
        self.typestore = lwd_typestore()
        self.recorder: EpisodeRecorder | None = None
        self.recorded: dict[str, str] = {}
        self.extras: dict[str, str] = {}
        self.recording_subscriptions: list[Subscription] = []
        self.tick_timer: Timer | None = None

    # ------------------------------------------------------------- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the topics, recover the spool, build the recorder; FAILURE (logged) when something is wrong."""
        settings = self.parameters
        try:
            self.recorded, self.extras = recorded_topics(settings)
            backend, factory = writer_factory(
                settings["writer_backend"], self.typestore, settings["storage"], settings["compression"]
            )
            quota = settings["max_spool_bytes"] or None
            spool = Spool(settings["spool_dir"], max_bytes=quota, min_free_bytes=settings["min_free_bytes"])
            for folder in recover_spool(spool, self.typestore):
                self.get_logger().warning(f"recovered interrupted episode {folder.name} as incomplete")
        except (ValueError, OSError) as error:
            self.get_logger().error(f"configure failed: {error}")
            return TransitionCallbackReturn.FAILURE
        self.recorder = EpisodeRecorder(
            spool,
            factory,
            self.typestore,
            flush_period_s=settings["flush_period_s"],
            label_timeout_s=settings["label_timeout_s"],
            clock_ns=self._now_ns,
        )
        self.get_logger().info(f"recording into {spool.root} with the {backend} writer")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to every recorded topic and the episode events and labels."""

        # Subscribe by the relative name, so the robot's namespace applies; record under the
        # absolute contract name, so every robot's bags look alike.
        def recording(topic: str, msgtype: str) -> Callable[[bytes, dict[str, Any]], None]:
            return lambda raw, info: self._record(topic, msgtype, raw, info)

        subscriptions = [
            subscribe(self, message_class(m), t, recording(t, m), depth=QUEUE_DEPTH, raw=True)
            for t, m in self.recorded.items()
        ]
        subscriptions += [  # best effort: matches any publisher of a topic outside the contract
            self.create_subscription(
                message_class(m),
                topics.relative(t),
                recording(t, m),
                qos_profile(topics.SENSOR_DATA, QUEUE_DEPTH),
                raw=True,
            )
            for t, m in self.extras.items()
        ]
        for topic, callback in ((topics.EPISODE_EVENT, self._on_event), (topics.REWARD_LABEL, self._on_reward)):
            msgtype = message_class(topics.TOPIC_TYPES[topic])
            subscriptions.append(subscribe(self, msgtype, topic, callback, depth=QUEUE_DEPTH, raw=True))
        self.recording_subscriptions = subscriptions
        self._count_publishers()
        self.tick_timer = self.create_timer(0.1, self._on_tick)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and commit an open episode (incomplete unless labelled)."""
        self._stop_recording()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Forget the recorder; configure builds a new one."""
        self.recorder = None
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Shutting down from any state: stop recording as deactivate does."""
        self._stop_recording()
        return super().on_shutdown(state)

    def _stop_recording(self) -> None:
        for subscription in self.recording_subscriptions:
            self.destroy_subscription(subscription)
        self.recording_subscriptions = []
        if self.tick_timer is not None:
            self.destroy_timer(self.tick_timer)
            self.tick_timer = None
        if self.recorder is not None and self.recorder.active:
            try:
                committed = self.recorder.end_episode()
            except LoggerError as error:
                self.get_logger().error(f"recording stopped: {error}")
                return
            self.get_logger().warning(f"recording stopped: open episode committed as {committed.name}")

    # ------------------------------------------------------------- callbacks

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _record(self, topic: str, msgtype: str, raw: bytes, info: dict[str, Any]) -> None:
        try:
            self.recorder.record(topic, msgtype, raw, self._now_ns(), info.get("publication_sequence_number"))
        except (LoggerError, OSError) as error:
            self.get_logger().error(f"recording {topic}: {error}", throttle_duration_sec=5.0)

    def _on_event(self, raw: bytes) -> None:
        event = self.typestore.deserialize_cdr(raw, topics.TOPIC_TYPES[topics.EPISODE_EVENT])
        if not event.robot_id:
            event = dataclasses.replace(event, robot_id=self.parameters["robot_id"])
        settings = self.parameters
        try:
            folder = self.recorder.record_event(
                event, raw, self._now_ns(), tuple(settings["cameras"]), settings["episode_kind"]
            )
        except (LoggerError, ValueError, OSError) as error:
            self.get_logger().error(f"episode event refused: {error}")
            return
        if event.event == EVENT_START:
            self.get_logger().info(f"recording episode {event.episode_id}")
        elif event.event == EVENT_END and self.recorder.active:
            self.get_logger().info(f"episode {event.episode_id} ended; waiting for its reward label")
        elif folder is not None:
            self.get_logger().info(f"episode committed: {folder}; {self._losses()}")

    def _on_reward(self, raw: bytes) -> None:
        label = self.typestore.deserialize_cdr(raw, topics.TOPIC_TYPES[topics.REWARD_LABEL])
        try:
            committed = self.recorder.record_reward(label, raw, self._now_ns())
        except (LoggerError, OSError) as error:
            self.get_logger().error(f"reward label refused: {error}")
            return
        if committed is not None:
            self.get_logger().info(f"episode committed: {committed}; {self._losses()}")

    def _count_publishers(self) -> None:
        """Tell the loss counter how many publishers each recorded topic has (it counts those with one)."""
        counts = {topic: self.count_publishers(topics.relative(topic)) for topic in self.recorded}
        self.recorder.losses.set_publishers(counts)

    def _on_tick(self) -> None:
        self._count_publishers()
        try:
            committed = self.recorder.tick()
        except LoggerError as error:
            self.get_logger().error(f"unlabelled episode: {error}")
            return
        if committed is not None:
            self.get_logger().warning(f"episode {committed.name} committed unlabelled (incomplete); {self._losses()}")

    def _losses(self) -> str:
        """The committed episode's lost samples, for its log line."""
        return f"lost samples: {format_losses(self.recorder.stats.lost_samples) or 'none'}"


def main(args: list[str] | None = None) -> None:
    """Run the recorder node until shutdown; an open episode is left for recovery, never passed off as complete."""
    run_node(RecorderNode, args, "interrupted; an open episode is recovered as incomplete on the next start")

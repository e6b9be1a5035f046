"""``trainer_node``: the ROS 2 host of :class:`~lwd_learner.trainer.TrainerService`.

A timer runs ``updates_per_tick`` service ticks (ingest, train, publish on schedule);
each policy the service publishes to the store is also announced on ``~/published``
(lwd_msgs/PolicyVersion: version, store URI, manifest sha256, channel). All the work
lives in the core; this file only maps parameters and messages.
"""

from __future__ import annotations

import json
from pathlib import Path

import rclpy
from lwd_policy.language import InstructionEncoder
from rclpy.node import Node

from lwd_learner.distributed import DistributedContext
from lwd_learner.trainer import TrainerConfig, TrainerError, TrainerService
from lwd_msgs.msg import PolicyVersion

NODE_NAME = "trainer_node"


class TrainerNode(Node):
    """Thin rclpy host: parameters → TrainerConfig, a timer that ticks the service, announcements out."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        store_url = str(self.declare_parameter("store_url", "file://./fleet").value)
        config = TrainerConfig(
            store_url=store_url,
            work_dir=Path(str(self.declare_parameter("work_dir", "runs/trainer").value)),
            pretrained=str(self.declare_parameter("pretrained", "").value),
            channel=str(self.declare_parameter("channel", "stable").value),
            publish_every=int(self.declare_parameter("publish_every", 100).value),
            batch_size=int(self.declare_parameter("batch_size", 64).value),
            buffer_capacity=int(self.declare_parameter("buffer_capacity", 200_000).value),
            mix={
                "demo": float(self.declare_parameter("mix_demo", 0.25).value),
                "autonomous": float(self.declare_parameter("mix_autonomous", 0.5).value),
                "intervention": float(self.declare_parameter("mix_intervention", 0.25).value),
            },
            scan_every=int(self.declare_parameter("scan_every", 50).value),
            poll_interval=float(self.declare_parameter("poll_interval", 5.0).value),
            n_step=int(self.declare_parameter("n_step", 1).value),
            agent=json.loads(str(self.declare_parameter("agent_json", "{}").value)),
            seed=int(self.declare_parameter("seed", 0).value),
            catalog=str(self.declare_parameter("catalog", "").value),
        )
        language_model = str(self.declare_parameter("language_model", "").value)
        self.updates_per_tick = int(self.declare_parameter("updates_per_tick", 10).value)
        tick_period = float(self.declare_parameter("tick_period", 0.05).value)
        if self.updates_per_tick < 1 or tick_period <= 0:
            raise ValueError(
                f"need updates_per_tick >= 1 and tick_period > 0, got {self.updates_per_tick}, {tick_period}"
            )
        self.service = TrainerService(
            config,
            lambda checkpoint: InstructionEncoder(language_model or checkpoint.config.language_model or None),
            DistributedContext(),
        )
        self.announcer = self.create_publisher(PolicyVersion, "~/published", 10)
        self.timer = self.create_timer(tick_period, self._on_tick)
        self.get_logger().info(f"trainer on {store_url}, resumed at update {self.service.step}")

    def _on_tick(self) -> None:
        for _ in range(self.updates_per_tick):
            try:
                version = self.service.tick()
            except TrainerError as error:
                self.get_logger().error(str(error))
                self.timer.cancel()
                return
            if version is not None:
                self._announce(version)

    def _announce(self, version: str) -> None:
        manifest = self.service.publisher.remote_manifest(version)
        message = PolicyVersion()
        message.header.stamp = self.get_clock().now().to_msg()
        message.version = version
        message.uri = f"{self.service.config.store_url.rstrip('/')}/policies/{version}"
        message.sha256 = manifest.digest if manifest is not None else ""
        message.channel = self.service.config.channel
        self.announcer.publish(message)
        self.get_logger().info(f"published {version} on {message.channel}")

    def shutdown(self) -> None:
        """Save the resume checkpoint and close telemetry."""
        self.service.save()
        self.service.close()


def main(args: list[str] | None = None) -> None:
    """Console entry point ``trainer_node``."""
    rclpy.init(args=args)
    node = TrainerNode()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        node.get_logger().info("interrupted; saving the resume checkpoint")
    finally:
        node.shutdown()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()

"""``trainer_node``: the ROS 2 host of :class:`~lwd_learner.trainer.TrainerService`.

A timer runs ``updates_per_tick`` service ticks (ingest, train, publish on schedule);
each policy the service publishes to the store is also announced on ``~/published``
(lwd_msgs/PolicyVersion: version, store URI, manifest sha256, channel; transient local, so a
late listener hears the latest). All the work
lives in the core; this file only maps parameters and messages.
"""

from __future__ import annotations

import json
from pathlib import Path

from lwd_interfaces import topics
from lwd_interfaces.ros import describe, qos_profile, run_node
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
        store_url = str(
            self.declare_parameter(
                "store_url", "file://./fleet", descriptor=describe("fsspec URL of the fleet store")
            ).value
        )
        agent_json = str(
            self.declare_parameter("agent_json", "{}", descriptor=describe("AgentConfig overrides as JSON")).value
        )
        try:
            agent = json.loads(agent_json)
        except json.JSONDecodeError as error:
            raise ValueError(f"parameter 'agent_json' is not valid JSON: {error}") from None
        config = TrainerConfig(
            store_url=store_url,
            work_dir=Path(
                str(
                    self.declare_parameter(
                        "work_dir", "runs/trainer", descriptor=describe("caches, resume checkpoints, telemetry")
                    ).value
                )
            ),
            pretrained=str(
                self.declare_parameter(
                    "pretrained", "", descriptor=describe("policy folder or store version; '' = the channel's")
                ).value
            ),
            channel=str(
                self.declare_parameter(
                    "channel", "stable", descriptor=describe("store channel moved to every published version")
                ).value
            ),
            publish_every=int(
                self.declare_parameter(
                    "publish_every",
                    100,
                    descriptor=describe("updates between published checkpoints", low=1, high=10**9),
                ).value
            ),
            batch_size=int(
                self.declare_parameter(
                    "batch_size", 64, descriptor=describe("transitions per update", low=1, high=65536)
                ).value
            ),
            buffer_capacity=int(
                self.declare_parameter(
                    "buffer_capacity", 200_000, descriptor=describe("replay buffer transitions", low=1, high=10**9)
                ).value
            ),
            mix={
                "demo": float(
                    self.declare_parameter(
                        "mix_demo", 0.25, descriptor=describe("replay share of demonstrations", low=0.0, high=1.0)
                    ).value
                ),
                "autonomous": float(
                    self.declare_parameter(
                        "mix_autonomous",
                        0.5,
                        descriptor=describe("replay share of autonomous steps", low=0.0, high=1.0),
                    ).value
                ),
                "intervention": float(
                    self.declare_parameter(
                        "mix_intervention",
                        0.25,
                        descriptor=describe("replay share of intervention steps", low=0.0, high=1.0),
                    ).value
                ),
            },
            scan_every=int(
                self.declare_parameter(
                    "scan_every", 50, descriptor=describe("updates between store scans", low=1, high=10**9)
                ).value
            ),
            poll_interval=float(
                self.declare_parameter(
                    "poll_interval", 5.0, descriptor=describe("store scan period while idle [s]", low=0.1, high=3600.0)
                ).value
            ),
            n_step=int(
                self.declare_parameter(
                    "n_step", 1, descriptor=describe("n of the n-step targets", low=1, high=1000)
                ).value
            ),
            agent=agent,
            seed=int(
                self.declare_parameter("seed", 0, descriptor=describe("training seed", low=0, high=2**31 - 1)).value
            ),
            catalog=str(
                self.declare_parameter(
                    "catalog", "", descriptor=describe("SQLite episode catalog; '' = <work_dir>/catalog.sqlite")
                ).value
            ),
        )
        language_model = str(
            self.declare_parameter(
                "language_model", "", descriptor=describe("sentence-transformers folder; '' = the policy's")
            ).value
        )
        self.updates_per_tick = int(
            self.declare_parameter(
                "updates_per_tick", 10, descriptor=describe("service ticks per timer callback", low=1, high=10000)
            ).value
        )
        tick_period = float(
            self.declare_parameter(
                "tick_period", 0.05, descriptor=describe("timer period [s]", low=0.001, high=60.0)
            ).value
        )
        self.service = TrainerService(
            config,
            lambda checkpoint: InstructionEncoder(language_model or checkpoint.config.language_model or None),
            DistributedContext(),
        )
        self.announcer = self.create_publisher(PolicyVersion, "~/published", qos_profile(topics.LATCHED))
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

    def destroy_node(self) -> None:
        """Save the resume checkpoint and close telemetry, then the node."""
        self.service.save()
        self.service.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Console entry point ``trainer_node``."""
    run_node(TrainerNode, args, "interrupted; saving the resume checkpoint")

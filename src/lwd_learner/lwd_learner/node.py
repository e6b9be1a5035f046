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

from lwd_fleet.layout import policy_uri
from lwd_interfaces import topics
from lwd_interfaces.messages import policy_version
from lwd_interfaces.ros import declare_parameters, publish_message, qos_profile, run_node
from lwd_policy.language import InstructionEncoder
from rclpy.node import Node

from lwd_learner.distributed import DistributedContext
from lwd_learner.parameters import TRAINER_NODE
from lwd_learner.replay_buffer import CATEGORIES
from lwd_learner.trainer import TrainerConfig, TrainerError, TrainerService
from lwd_msgs.msg import PolicyVersion

NODE_NAME = "trainer_node"


class TrainerNode(Node):
    """Thin rclpy host: parameters → TrainerConfig, a timer that ticks the service, announcements out."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        values = declare_parameters(self, TRAINER_NODE)
        try:
            agent = json.loads(values["agent_json"])
        except json.JSONDecodeError as error:
            raise ValueError(f"parameter 'agent_json' is not valid JSON: {error}") from None
        store_url, language_model = values["store_url"], values["language_model"]
        clone_mix = {kind: values[f"clone_mix_{kind}"] for kind in CATEGORIES}
        config = TrainerConfig(
            store_url=store_url,
            work_dir=Path(values["work_dir"]),
            mix={kind: values[f"mix_{kind}"] for kind in CATEGORIES},
            clone_mix=clone_mix if any(clone_mix.values()) else {},
            agent=agent,
            **{
                name: values[name]
                for name in (
                    "pretrained",
                    "channel",
                    "publish_every",
                    "batch_size",
                    "buffer_capacity",
                    "max_oversample",
                    "scan_every",
                    "poll_interval",
                    "n_step",
                    "seed",
                    "catalog",
                    "signing_key",
                    "ingest_workers",
                    "canary_channel",
                    "canary_window",
                    "canary_margin",
                )
            },
        )
        self.updates_per_tick = values["updates_per_tick"]
        self.service = TrainerService(
            config,
            lambda checkpoint: InstructionEncoder(language_model or checkpoint.config.language_model or None),
            DistributedContext(),
        )
        self.announcer = self.create_publisher(PolicyVersion, "~/published", qos_profile(topics.LATCHED))
        self.timer = self.create_timer(values["tick_period"], self._on_tick)
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
        uri = policy_uri(self.service.config.store_url, version)
        digest = manifest.digest if manifest is not None else ""
        channel = self.service.config.publish_channel
        now = self.get_clock().now().nanoseconds
        publish_message(self.announcer, policy_version(now, version, uri, digest, channel))
        self.get_logger().info(f"published {version} on {channel}")

    def destroy_node(self) -> None:
        """Save the resume checkpoint and close telemetry, then the node."""
        self.service.save()
        self.service.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Console entry point ``trainer_node``."""
    run_node(TrainerNode, args, "interrupted; saving the resume checkpoint")

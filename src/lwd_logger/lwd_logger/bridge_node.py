"""``bridge_node``: the ROS 2 host of the bag bridge (uploader) and the policy channel watcher.

A worker thread uploads committed episodes from the spool to the fleet store
and polls the policy channel; each new verified version is announced on
``/policy/version`` (lwd_msgs/PolicyVersion) with its local cache folder as
``uri``. The store URL's credentials are never logged. All decisions live in
the cores (``bridge``, ``channel_watcher``, ``store``).
"""

from __future__ import annotations

import threading
import time

import rclpy
from lwd_interfaces import topics
from rclpy.node import Node

from lwd_logger.bridge import BagBridge
from lwd_logger.channel_watcher import ChannelWatcher, PolicyRelease
from lwd_logger.errors import StoreError
from lwd_logger.spool import Spool
from lwd_logger.store import FleetStore
from lwd_msgs.msg import PolicyVersion

NODE_NAME = "bridge_node"


class BridgeNode(Node):
    """Thin rclpy host: runs the uploader and channel watcher in a worker thread, publishes announcements."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.spool_dir = str(self.declare_parameter("spool_dir", "spool").value)
        self.store_url = str(self.declare_parameter("store_url", "file://./fleet").value)
        self.robot_id = str(self.declare_parameter("robot_id", "robot-0").value)
        self.channel = str(self.declare_parameter("channel", "stable").value)
        self.cache_dir = str(self.declare_parameter("cache_dir", "policy_cache").value)
        self.key_filename = str(self.declare_parameter("key_filename", "").value)
        self.upload_period_s = float(self.declare_parameter("upload_period_s", 5.0).value)
        self.channel_period_s = float(self.declare_parameter("channel_period_s", 10.0).value)
        self.max_attempts = int(self.declare_parameter("max_attempts", 6).value)
        self.base_delay_s = float(self.declare_parameter("base_delay_s", 0.5).value)
        self.max_delay_s = float(self.declare_parameter("max_delay_s", 30.0).value)
        self.version_pub = self.create_publisher(PolicyVersion, topics.relative(topics.POLICY_VERSION), 10)
        self.stop = threading.Event()
        self.worker = threading.Thread(target=self._work, name="bag_bridge", daemon=True)
        self.worker.start()

    def _connect(self) -> tuple[BagBridge, ChannelWatcher]:
        options = {"key_filename": self.key_filename} if self.key_filename else None
        store = FleetStore(self.store_url, storage_options=options)
        self.get_logger().info(f"robot {self.robot_id}: fleet store {store.display_url}, channel {self.channel}")
        bridge = BagBridge(
            Spool(self.spool_dir),
            store,
            max_attempts=self.max_attempts,
            base_delay_s=self.base_delay_s,
            max_delay_s=self.max_delay_s,
            sleep=self.stop.wait,
        )
        return bridge, ChannelWatcher(store, self.channel, self.cache_dir, on_release=self._announce)

    def _announce(self, release: PolicyRelease) -> None:
        message = PolicyVersion()
        message.header.stamp = self.get_clock().now().to_msg()
        message.version = release.version
        message.uri = release.folder.resolve().as_uri()
        message.sha256 = release.sha256
        message.channel = release.channel
        self.version_pub.publish(message)

    def _work(self) -> None:
        components = None
        next_channel_poll = 0.0
        while not self.stop.is_set():
            try:
                if components is None:
                    components = self._connect()
                bridge, watcher = components
                bridge.upload_pending()
                if time.monotonic() >= next_channel_poll:
                    next_channel_poll = time.monotonic() + self.channel_period_s
                    watcher.poll()
            except StoreError as error:
                self.get_logger().error(f"bridge: {error}")
            self.stop.wait(self.upload_period_s)

    def shutdown(self) -> None:
        """Stop the worker thread."""
        self.stop.set()
        self.worker.join(timeout=10.0)


def main(args: list[str] | None = None) -> None:
    """Run the bridge node until shutdown."""
    rclpy.init(args=args)
    node = BridgeNode()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        node.get_logger().info("interrupted")
    finally:
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()

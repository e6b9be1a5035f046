"""``bridge_node``: the ROS 2 host of the bag bridge (uploader) and the policy channel watcher, a lifecycle node.

- **configure** validates the parameters and creates the ``/policy/version`` publisher.
- **activate** starts a worker thread that uploads committed episodes from the spool
  to the fleet store and polls the policy channel; each new verified version is
  announced on ``/policy/version`` (lwd_msgs/PolicyVersion, transient local, so a policy
  node that starts later still hears it) with its local cache folder as ``uri``.
- **deactivate** stops the worker after its current upload.

An unreachable store is logged and retried every ``upload_period_s``; episodes stay in
the spool until their upload is verified. The store URL's credentials are never logged.
The worker paces its I/O with the monotonic clock (it is network pacing, not a message
time); announcement stamps come from the node clock. All decisions live in the cores
(``bridge``, ``channel_watcher``, ``store``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from lwd_interfaces import topics
from lwd_interfaces.ros import contract_qos, describe, run_node
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher, LifecycleState, TransitionCallbackReturn

from lwd_logger.bridge import BagBridge
from lwd_logger.channel_watcher import ChannelWatcher, PolicyRelease
from lwd_logger.errors import StoreError
from lwd_logger.spool import Spool
from lwd_logger.store import FleetStore
from lwd_msgs.msg import PolicyVersion

NODE_NAME = "bridge_node"


class BridgeNode(LifecycleNode):
    """Thin rclpy lifecycle host: runs the uploader and channel watcher in a worker thread, publishes announcements."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.declare_parameter("spool_dir", "spool", descriptor=describe("the recorder's spool"))
        self.declare_parameter(
            "store_url", "file://./fleet", descriptor=describe("fsspec URL of the fleet store: file://, sftp://, s3://")
        )
        self.declare_parameter("robot_id", "robot-0", descriptor=describe("this robot's fleet id (for the logs)"))
        self.declare_parameter("channel", "stable", descriptor=describe("policy channel to follow"))
        self.declare_parameter(
            "cache_dir", "policy_cache", descriptor=describe("verified policy versions land in <cache_dir>/<version>/")
        )
        self.declare_parameter(
            "key_filename", "", descriptor=describe("SSH private key for sftp:// stores (never logged)")
        )
        self.declare_parameter(
            "upload_period_s", 5.0, descriptor=describe("spool scan period [s]", low=0.1, high=3600.0)
        )
        self.declare_parameter(
            "channel_period_s", 10.0, descriptor=describe("channel poll period [s]", low=0.1, high=3600.0)
        )
        self.declare_parameter(
            "max_attempts", 6, descriptor=describe("store retries per episode before the next scan", low=1, high=100)
        )
        self.declare_parameter(
            "base_delay_s", 0.5, descriptor=describe("first retry delay, doubled each retry [s]", low=0.0, high=60.0)
        )
        self.declare_parameter("max_delay_s", 30.0, descriptor=describe("retry delay cap [s]", low=0.0, high=3600.0))
        self.version_pub: LifecyclePublisher | None = None
        self.stop = threading.Event()
        self.worker: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Read and check the parameters; create the announcement publisher."""
        value = self._value
        self.spool_dir = str(value("spool_dir"))
        self.store_url = str(value("store_url"))
        self.robot_id = str(value("robot_id"))
        self.channel = str(value("channel"))
        self.cache_dir = str(value("cache_dir"))
        self.key_filename = str(value("key_filename"))
        self.upload_period_s = float(value("upload_period_s"))
        self.channel_period_s = float(value("channel_period_s"))
        self.max_attempts = int(value("max_attempts"))
        self.base_delay_s = float(value("base_delay_s"))
        self.max_delay_s = float(value("max_delay_s"))
        if not self.store_url or not self.channel:
            self.get_logger().error("configure failed: store_url and channel must not be empty")
            return TransitionCallbackReturn.FAILURE
        self.version_pub = self.create_lifecycle_publisher(
            PolicyVersion, topics.relative(topics.POLICY_VERSION), contract_qos(topics.POLICY_VERSION)
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the upload and channel-watch worker."""
        result = super().on_activate(state)
        self.stop.clear()
        self.worker = threading.Thread(target=self._work, name="bag_bridge", daemon=True)
        self.worker.start()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the worker (after its current upload)."""
        self.stop_worker()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the publisher; configure creates it again."""
        if self.version_pub is not None:
            self.destroy_lifecycle_publisher(self.version_pub)
            self.version_pub = None
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the worker from any state."""
        self.stop_worker()
        return super().on_shutdown(state)

    def _value(self, name: str) -> Any:
        return self.get_parameter(name).value

    # ------------------------------------------------------------- worker

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

    def stop_worker(self) -> None:
        """Stop the worker thread, if running."""
        self.stop.set()
        if self.worker is not None:
            self.worker.join(timeout=10.0)
            self.worker = None

    def destroy_node(self) -> None:
        """Stop the worker, then the node."""
        self.stop_worker()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Run the bridge node until shutdown."""
    run_node(BridgeNode, args)

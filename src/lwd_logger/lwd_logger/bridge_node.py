"""``bridge_node``: the ROS 2 host of the bag bridge (uploader) and the policy channel watcher, a lifecycle node.

- **configure** validates the parameters, loads the release keys it trusts (``trusted_keys``,
  ``revoked_keys``; without one it fails unless ``allow_unsigned`` is set for development, which
  it then warns about) and creates the ``/policy/version`` publisher.
- **activate** starts a worker thread that uploads committed episodes from the spool
  to the fleet store and polls the policy channel (``canary_channel`` instead when
  ``canary_share`` makes this robot a canary, :mod:`lwd_fleet.canary`); each new verified version is
  announced on ``/policy/version`` (lwd_msgs/PolicyVersion, transient local, so a policy
  node that starts later still hears it) with its local cache folder as ``uri``. A version
  that is not signed by a trusted release key is refused and logged; the robot keeps its policy.
- **deactivate** stops the worker after its current upload.

An unreachable store is logged and retried every ``upload_period_s``; episodes stay in
the spool until their upload is verified. The store URL's credentials are never logged.
The worker paces its I/O with the monotonic clock (it is network pacing, not a message
time); announcement stamps come from the node clock. All decisions live in the cores
(``bridge`` here; ``channel_watcher`` and ``store`` in lwd_fleet).
"""

from __future__ import annotations

import threading
import time

from lwd_fleet.canary import robot_channel
from lwd_fleet.channel_watcher import ChannelWatcher, PolicyRelease
from lwd_fleet.errors import FleetError, ReleaseKeyError
from lwd_fleet.signing import ReleaseTrust
from lwd_fleet.store import FleetStore
from lwd_interfaces import topics
from lwd_interfaces.messages import policy_version
from lwd_interfaces.ros import advertise, declare_parameters, publish_message, run_node
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher, LifecycleState, TransitionCallbackReturn

from lwd_logger.bridge import BagBridge
from lwd_logger.parameters import BRIDGE_NODE
from lwd_logger.spool import Spool
from lwd_msgs.msg import PolicyVersion

NODE_NAME = "bridge_node"


class BridgeNode(LifecycleNode):
    """Thin rclpy lifecycle host: runs the uploader and channel watcher in a worker thread, publishes announcements."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.parameters = declare_parameters(self, BRIDGE_NODE)
        self.version_pub: LifecyclePublisher | None = None
        self.trust: ReleaseTrust | None = None
        self.stop = threading.Event()
        self.worker: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the store settings, load the trusted release keys; create the announcement publisher."""
        settings = self.parameters
        if not all(settings[name] for name in ("store_url", "channel", "canary_channel")):
            self.get_logger().error("configure failed: store_url, channel and canary_channel must not be empty")
            return TransitionCallbackReturn.FAILURE
        try:
            self.trust = ReleaseTrust.from_files(
                settings["trusted_keys"], settings["revoked_keys"], settings["allow_unsigned"]
            )
        except ReleaseKeyError as error:
            self.get_logger().error(f"configure failed: {error}")
            return TransitionCallbackReturn.FAILURE
        log = self.get_logger().warning if self.trust.allow_unsigned else self.get_logger().info
        log(f"policy releases: {self.trust.describe()}")
        self.version_pub = advertise(self, PolicyVersion, topics.POLICY_VERSION)
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

    # ------------------------------------------------------------- worker

    def _connect(self) -> tuple[BagBridge, ChannelWatcher]:
        settings = self.parameters
        key = settings["key_filename"]
        store = FleetStore(settings["store_url"], storage_options={"key_filename": key} if key else None)
        robot_id = settings["robot_id"]
        channel = robot_channel(robot_id, settings["channel"], settings["canary_channel"], settings["canary_share"])
        self.get_logger().info(f"robot {robot_id}: fleet store {store.display_url}, channel {channel}")
        bridge = BagBridge(
            Spool(settings["spool_dir"]),
            store,
            max_attempts=settings["max_attempts"],
            base_delay_s=settings["base_delay_s"],
            max_delay_s=settings["max_delay_s"],
            sleep=self.stop.wait,
        )
        watcher = ChannelWatcher(store, channel, settings["cache_dir"], trust=self.trust, on_release=self._announce)
        return bridge, watcher

    def _announce(self, release: PolicyRelease) -> None:
        now = self.get_clock().now().nanoseconds
        uri = release.folder.resolve().as_uri()
        publish_message(self.version_pub, policy_version(now, release.version, uri, release.sha256, release.channel))

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
                    next_channel_poll = time.monotonic() + self.parameters["channel_period_s"]
                    watcher.poll()
            except FleetError as error:
                self.get_logger().error(f"bridge: {error}")
            self.stop.wait(self.parameters["upload_period_s"])

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

"""``policy_node``: the ROS 2 host of the inference runtime, a lifecycle node.

- **configure** validates the parameters and loads and verifies the initial
  checkpoint (the slow part), so a bad checkpoint fails the transition with a
  logged reason instead of killing the process.
- **activate** starts the inference threads, subscribes and announces the version
  it serves. Each ``/joint_states`` message is then one control step: the node
  builds a ``PolicyObservation`` from it and the latest camera images (decoded by
  ``lwd_interfaces.messages.image_pixels``, no cv_bridge) and, for a policy with
  object slots, the latest
  ``/perception/object_poses``; until every input has arrived the step is skipped.
  It then calls ``InferenceRuntime.step`` (which never waits for
  inference) and publishes the command on ``/policy/command`` with the joint
  state's stamp, plus every new chunk on ``/policy/action_chunk``.
  ``/episode/event`` starts set the instruction and reset the queue.
  ``/policy/version`` announcements whose weights are on local disk are offered for
  hot swap; the node announces the version it runs on the same topic (channel
  ``running``).
- **deactivate** unsubscribes and stops inference: no command is published, so the
  intervention arbiter holds the robot (its policy timeout) until reactivation.

All logic lives in the cores; this file only converts messages.
"""

from __future__ import annotations

from geometry_msgs.msg import PoseArray
from lwd_fleet.policy_cache import resolve_local_policy
from lwd_interfaces import topics
from lwd_interfaces.messages import image_pixels, joint_state, policy_version, pose_array_poses, stamp_ns
from lwd_interfaces.robots import robot_description
from lwd_interfaces.ros import advertise, declare_parameters, publish_message, run_node, subscribe
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher, LifecycleState, TransitionCallbackReturn
from rclpy.subscription import Subscription
from sensor_msgs.msg import Image, JointState

from lwd_msgs.msg import ActionChunk, EpisodeEvent, PolicyVersion
from lwd_policy.language import InstructionEncoder, LanguageModelError
from lwd_policy.latest_inputs import LatestInputs
from lwd_policy.messages import action_chunk_msg, stamp_seconds
from lwd_policy.parameters import POLICY_NODE, runtime_config, safety_limits
from lwd_policy.runtime import InferenceRuntime, StepCommand, SwapReport

NODE_NAME = "policy_node"
RUNNING_CHANNEL = "running"


class PolicyNode(LifecycleNode):
    """Thin rclpy lifecycle host: message conversion around ``InferenceRuntime``."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.parameters = declare_parameters(self, POLICY_NODE)
        self.runtime: InferenceRuntime | None = None
        self.cache_dir = ""
        self.step_period = 0.0
        self.inputs = LatestInputs((), False)
        self.origins: dict[str, str] = {}
        self.announced = ""
        self.outputs: dict[str, LifecyclePublisher] = {}
        self.input_subscriptions: list[Subscription] = []

    # ------------------------------------------------------------- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the parameters and load the initial checkpoint; FAILURE (logged) when either is bad."""
        settings = self.parameters
        checkpoint = settings["checkpoint"]
        try:
            if not checkpoint:
                raise ValueError("parameter 'checkpoint' must name the folder of the initial policy")
            encoder = InstructionEncoder(settings["language_model_path"] or None)
            limits = safety_limits(settings)
            robot = robot_description(settings["robot"])
            self.runtime = InferenceRuntime.from_checkpoint(
                checkpoint, limits, runtime_config(settings), encoder, robot
            )
            warm_up_s = self.runtime.warm_up(settings["instruction"])
        except (ValueError, OSError, LanguageModelError) as error:
            self.get_logger().error(f"configure failed: {error}")
            self.runtime = None
            return TransitionCallbackReturn.FAILURE
        self.cache_dir = settings["policy_cache_dir"]
        config = self.runtime.policy_config
        self.step_period = config.control_period
        self.inputs = LatestInputs(config.cameras, config.object_slots > 0, settings["instruction"])
        self.origins = {self.runtime.version: checkpoint}
        self.outputs = {
            "command": advertise(self, JointState, topics.POLICY_COMMAND),
            "chunk": advertise(self, ActionChunk, topics.ACTION_CHUNK),
            "version": advertise(self, PolicyVersion, topics.POLICY_VERSION),
        }
        self.get_logger().info(
            f"loaded policy {self.runtime.version} from {checkpoint}; warm-up inference {warm_up_s:.2f} s"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start inference, subscribe to the robot's inputs and announce the served version."""
        result = super().on_activate(state)
        self.runtime.start()
        self.input_subscriptions = [
            subscribe(self, JointState, topics.JOINT_STATES, self.on_joint_state),
            subscribe(self, EpisodeEvent, topics.EPISODE_EVENT, self.on_episode_event),
            subscribe(self, PolicyVersion, topics.POLICY_VERSION, self.on_policy_version),
        ]
        for camera in self.runtime.policy_config.cameras:
            self.input_subscriptions.append(
                subscribe(self, Image, topics.camera_topic(camera), lambda msg, name=camera: self.on_image(name, msg))
            )
        if self.runtime.policy_config.object_slots:
            self.input_subscriptions.append(subscribe(self, PoseArray, topics.OBJECT_POSES, self.on_object_poses))
        self.announce(self.runtime.version)
        self.get_logger().info(f"serving policy {self.runtime.version}")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop inference; the arbiter holds the robot meanwhile."""
        self._stop_serving()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the loaded policy and the publishers."""
        for publisher in self.outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self.outputs = {}
        self.runtime = None
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop serving from any state."""
        self._stop_serving()
        return super().on_shutdown(state)

    def _stop_serving(self) -> None:
        for subscription in self.input_subscriptions:
            self.destroy_subscription(subscription)
        self.input_subscriptions = []
        self.inputs.clear()
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime.reset()

    # ------------------------------------------------------------- callbacks

    def on_image(self, camera: str, msg: Image) -> None:
        """Keep the newest frame of each camera (as RGB) with its stamp; a malformed image is logged and dropped."""
        try:
            frame = image_pixels(msg)
        except ValueError as error:
            self.get_logger().error(f"camera {camera}: {error}", throttle_duration_sec=5.0)
            return
        self.inputs.set_image(camera, stamp_seconds(msg.header.stamp.sec, msg.header.stamp.nanosec), frame)

    def on_object_poses(self, msg: PoseArray) -> None:
        """Keep the newest task-object poses ``[N, 7]`` with their stamp."""
        self.inputs.set_object_poses(
            stamp_seconds(msg.header.stamp.sec, msg.header.stamp.nanosec), pose_array_poses(msg)
        )

    def on_joint_state(self, msg: JointState) -> None:
        """One control step: observe, step the runtime, publish command and new chunks."""
        stamp = stamp_seconds(msg.header.stamp.sec, msg.header.stamp.nanosec)
        observation = self.inputs.observation(stamp, msg.position)
        if observation is None:
            return
        now = self.get_clock().now().nanoseconds / 1e9
        result = self.runtime.step(observation, max(now, stamp))
        self.publish_command(msg, result)
        for chunk in result.new_chunks:
            publish_message(self.outputs["chunk"], action_chunk_msg(chunk, self.step_period, round(chunk.stamp * 1e9)))
        if result.policy_version != self.announced and result.from_policy:
            self.announce(result.policy_version)

    def publish_command(self, measured: JointState, result: StepCommand) -> None:
        """``/policy/command`` for this step, stamped like the joint state it answers; holds are not published."""
        if not result.from_policy:
            self.get_logger().warning(f"holding: {result.status.value}", throttle_duration_sec=2.0)
            return
        command = joint_state(stamp_ns(measured.header.stamp), measured.name, result.command)
        publish_message(self.outputs["command"], command)

    def on_episode_event(self, msg: EpisodeEvent) -> None:
        """A new episode: take its instruction and drop chunks computed for the previous one."""
        if msg.event in (EpisodeEvent.EVENT_START, EpisodeEvent.EVENT_RERECORD):
            if msg.instruction:
                self.inputs.instruction = msg.instruction
            self.runtime.reset()

    def on_policy_version(self, msg: PolicyVersion) -> None:
        """Offer an announced version for hot swap when its weights are on local disk."""
        if msg.channel == RUNNING_CHANNEL or msg.version in (self.runtime.version, self.announced):
            return
        folder = resolve_local_policy(msg.uri, msg.version, self.cache_dir)
        if folder is None:
            self.get_logger().info(f"policy {msg.version} announced but not in local cache yet ({msg.uri})")
            return
        self.origins[msg.version] = str(folder)
        self.runtime.offer_checkpoint(folder).add_done_callback(lambda future: self.on_swap_report(future.result()))

    def on_swap_report(self, report: SwapReport) -> None:
        """Log the outcome of an offered checkpoint (the runtime already logged the details)."""
        if report.accepted:
            self.get_logger().info(f"policy {report.version} staged; it serves from the next chunk")
        else:
            self.get_logger().error(f"rejected policy at {report.folder}: {report.reason}")

    def announce(self, version: str) -> None:
        """Publish the version this robot now runs."""
        digest = self.runtime.digest if version == self.runtime.version else ""
        now = self.get_clock().now().nanoseconds
        announcement = policy_version(now, version, self.origins.get(version, ""), digest, RUNNING_CHANNEL)
        publish_message(self.outputs["version"], announcement)
        self.announced = version

    def destroy_node(self) -> None:
        """Stop the inference threads, then the node."""
        if self.runtime is not None:
            self.runtime.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Run the policy node until shutdown."""
    run_node(PolicyNode, args)

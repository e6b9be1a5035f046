"""``policy_node``: the ROS 2 host of the inference runtime.

Each ``/joint_states`` message is one control step: the node builds a
``PolicyObservation`` from it and the latest camera images, calls
``InferenceRuntime.step`` (which never waits for inference) and publishes the
command on ``/policy/command`` with the joint state's stamp, plus every new
chunk on ``/policy/action_chunk``. ``/episode/event`` starts set the
instruction and reset the queue. ``/policy/version`` announcements whose
weights are on local disk are offered for hot swap; the node announces the
version it runs on the same topic (channel ``running``). All logic lives in the
cores; this file only converts messages.
"""

from __future__ import annotations

import numpy as np
import rclpy
from lwd_interfaces import topics
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import Image, JointState

from lwd_msgs.msg import ActionChunk, EpisodeEvent, PolicyVersion
from lwd_policy.inference import PolicyObservation
from lwd_policy.language import InstructionEncoder
from lwd_policy.local_policies import resolve_local_policy
from lwd_policy.messages import MessageError, action_chunk_fields, image_to_array, stamp_seconds
from lwd_policy.runtime import InferenceRuntime, RuntimeConfig, StepCommand, SwapReport
from lwd_policy.safety import SafetyLimits, aloha_limits

NODE_NAME = "policy_node"
RUNNING_CHANNEL = "running"


class PolicyNode(Node):
    """Thin rclpy host: message conversion around ``InferenceRuntime``."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        aloha = aloha_limits()
        checkpoint = str(self.declare_parameter("checkpoint", "").value)
        self.cache_dir = str(self.declare_parameter("policy_cache_dir", "").value)
        self.instruction = str(self.declare_parameter("instruction", "").value)
        language_model = str(self.declare_parameter("language_model_path", "").value)
        arm_max_delta = float(self.declare_parameter("arm_max_delta", 0.05).value)
        gripper_max_delta = float(self.declare_parameter("gripper_max_delta", 0.1).value)
        lower = list(self.declare_parameter("joint_lower", aloha.lower.tolist()).value)
        upper = list(self.declare_parameter("joint_upper", aloha.upper.tolist()).value)
        runtime_config = RuntimeConfig(
            mode="realtime",
            low_water=int(self.declare_parameter("low_water", 14).value),
            stale_after=float(self.declare_parameter("stale_after_s", 0.1).value),
            max_latency=float(self.declare_parameter("max_latency_s", 0.25).value),
            blend_decay=float(self.declare_parameter("blend_decay", 0.1).value),
            blend_ramp=int(self.declare_parameter("blend_ramp_steps", 3).value),
            torch_threads=int(self.declare_parameter("torch_threads", 1).value),
            seed=int(self.declare_parameter("seed", 0).value),
        )
        if not checkpoint:
            raise ValueError("parameter 'checkpoint' must name the folder of the initial policy")
        deltas = aloha_limits(arm_max_delta, gripper_max_delta).max_delta
        limits = SafetyLimits(lower=np.asarray(lower), upper=np.asarray(upper), max_delta=deltas)
        encoder = InstructionEncoder(language_model or None)
        self.runtime = InferenceRuntime.from_checkpoint(checkpoint, limits, runtime_config, encoder)
        self.step_period = self.runtime.policy_config.control_period
        self.images: dict[str, tuple[float, np.ndarray]] = {}
        self.origins: dict[str, str] = {self.runtime.version: checkpoint}
        self.announced = ""

        self.command_pub = self.create_publisher(JointState, topics.relative(topics.POLICY_COMMAND), 10)
        self.chunk_pub = self.create_publisher(ActionChunk, topics.relative(topics.ACTION_CHUNK), 10)
        self.version_pub = self.create_publisher(PolicyVersion, topics.relative(topics.POLICY_VERSION), 10)
        self.create_subscription(
            JointState, topics.relative(topics.JOINT_STATES), self.on_joint_state, qos_profile_sensor_data
        )
        for camera in self.runtime.policy_config.cameras:
            self.create_subscription(
                Image,
                topics.relative(topics.camera_topic(camera)),
                lambda msg, name=camera: self.on_image(name, msg),
                qos_profile_sensor_data,
            )
        self.create_subscription(EpisodeEvent, topics.relative(topics.EPISODE_EVENT), self.on_episode_event, 10)
        self.create_subscription(PolicyVersion, topics.relative(topics.POLICY_VERSION), self.on_policy_version, 10)
        self.runtime.start()
        self.announce(self.runtime.version)
        self.get_logger().info(f"serving policy {self.runtime.version} from {checkpoint}")

    def on_image(self, camera: str, msg: Image) -> None:
        """Keep the newest frame of each camera with its stamp."""
        try:
            frame = image_to_array(msg.encoding, msg.height, msg.width, msg.step, msg.data)
        except MessageError as error:
            self.get_logger().error(f"camera {camera}: {error}", throttle_duration_sec=5.0)
            return
        self.images[camera] = (stamp_seconds(msg.header.stamp.sec, msg.header.stamp.nanosec), frame)

    def on_joint_state(self, msg: JointState) -> None:
        """One control step: observe, step the runtime, publish command and new chunks."""
        cameras = self.runtime.policy_config.cameras
        if any(camera not in self.images for camera in cameras):
            return
        stamp = stamp_seconds(msg.header.stamp.sec, msg.header.stamp.nanosec)
        oldest = min([stamp, *(self.images[camera][0] for camera in cameras)])
        observation = PolicyObservation(
            stamp=oldest,
            qpos=np.asarray(msg.position, dtype=np.float64),
            images={camera: self.images[camera][1] for camera in cameras},
            instruction=self.instruction,
        )
        now = self.get_clock().now().nanoseconds / 1e9
        result = self.runtime.step(observation, max(now, stamp))
        self.publish_command(msg, result)
        for chunk in result.new_chunks:
            fields = action_chunk_fields(chunk, self.step_period)
            fields["actions"] = fields["actions"].tolist()
            chunk_msg = ActionChunk(**fields)
            chunk_msg.header.stamp = Time(nanoseconds=round(chunk.stamp * 1e9)).to_msg()
            self.chunk_pub.publish(chunk_msg)
        if result.policy_version != self.announced and result.from_policy:
            self.announce(result.policy_version)

    def publish_command(self, joint_state: JointState, result: StepCommand) -> None:
        """``/policy/command`` for this step, stamped like the joint state it answers; holds are not published."""
        if not result.from_policy:
            self.get_logger().warning(f"holding: {result.status.value}", throttle_duration_sec=2.0)
            return
        command = JointState()
        command.header.stamp = joint_state.header.stamp
        command.name = list(joint_state.name)
        command.position = result.command.tolist()
        self.command_pub.publish(command)

    def on_episode_event(self, msg: EpisodeEvent) -> None:
        """A new episode: take its instruction and drop chunks computed for the previous one."""
        if msg.event in (EpisodeEvent.EVENT_START, EpisodeEvent.EVENT_RERECORD):
            if msg.instruction:
                self.instruction = msg.instruction
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
        msg = PolicyVersion()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.version = version
        msg.uri = self.origins.get(version, "")
        msg.sha256 = self.runtime.digest if version == self.runtime.version else ""
        msg.channel = RUNNING_CHANNEL
        self.version_pub.publish(msg)
        self.announced = version

    def destroy_node(self) -> None:
        """Stop the inference threads, then the node."""
        self.runtime.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Run the policy node until shutdown."""
    rclpy.init(args=args)
    node = PolicyNode()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        node.get_logger().info("interrupted")
    finally:
        node.destroy_node()
        rclpy.try_shutdown()

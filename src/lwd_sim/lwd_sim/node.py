"""``sim_driver``: the ROS 2 host of AlohaSimDriver, standing in for a real robot driver.

Every control period (``control_rate_hz``, 50 Hz) it steps the simulator with the latest
``/command/executed`` joint command and publishes ``/joint_states`` and, every
``camera_every_n_steps`` steps, one rgb8 ``sensor_msgs/Image`` per configured camera on
``camera_topic(name)``, all with the same header stamp. Before any command arrives it holds the
current pose. An ``/episode/event`` START or RERECORD resets the scene with the next seed of the
stream that starts at ``seed``. A malformed command is logged and dropped; it never reaches
the physics. All simulation lives in the core; this file only converts messages.
"""

from __future__ import annotations

import numpy as np
import rclpy
from lwd_interfaces import topics
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState

from lwd_msgs.msg import EpisodeEvent
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.driver import CommandError, Observation

NODE_NAME = "sim_driver"


class SimDriverNode(Node):
    """Thin rclpy host: steps the simulator on a timer and converts messages."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        task = str(self.declare_parameter("task", "transfer_cube").value)
        cameras = list(self.declare_parameter("cameras", ["top"]).value)
        height = int(self.declare_parameter("image_height", 96).value)
        width = int(self.declare_parameter("image_width", 128).value)
        control_rate_hz = float(self.declare_parameter("control_rate_hz", 50.0).value)
        self.camera_every = int(self.declare_parameter("camera_every_n_steps", 1).value)
        self.next_seed = int(self.declare_parameter("seed", 0).value)
        self.frame_id = str(self.declare_parameter("frame_id", "world").value)
        if control_rate_hz <= 0:
            raise ValueError(f"control_rate_hz must be positive, got {control_rate_hz}")
        if self.camera_every < 1:
            raise ValueError(f"camera_every_n_steps must be at least 1, got {self.camera_every}")
        self.driver = AlohaSimDriver(task, cameras=cameras, height=height, width=width)
        self.joint_names = self.driver.joint_names
        self.command: np.ndarray | None = None
        self.steps = 0
        self.joint_publisher = self.create_publisher(JointState, topics.relative(topics.JOINT_STATES), 10)
        self.image_publishers = {
            camera: self.create_publisher(Image, topics.relative(topics.camera_topic(camera)), qos_profile_sensor_data)
            for camera in self.driver.cameras
        }
        self.create_subscription(JointState, topics.relative(topics.EXECUTED_COMMAND), self.on_command, 10)
        self.create_subscription(EpisodeEvent, topics.relative(topics.EPISODE_EVENT), self.on_episode_event, 10)
        self.reset()
        self.create_timer(1.0 / control_rate_hz, self.on_timer)
        self.get_logger().info(f"simulating {task} with cameras {cameras} at {height}x{width}, {control_rate_hz} Hz")

    def reset(self) -> None:
        """New scene from the next seed; hold the start pose until a command arrives."""
        self.driver.reset(self.next_seed)
        self.get_logger().info(f"reset with seed {self.next_seed}: {self.driver.instruction!r}")
        self.next_seed += 1
        self.command = None

    def on_command(self, message: JointState) -> None:
        """Keep the latest executed command, reordered by joint name when names are given."""
        position = np.asarray(message.position, dtype=np.float64)
        if message.name:
            if sorted(message.name) != sorted(self.joint_names) or len(position) != len(message.name):
                self.get_logger().error(f"dropped command with joints {list(message.name)}; need {self.joint_names}")
                return
            order = {name: index for index, name in enumerate(message.name)}
            position = position[[order[name] for name in self.joint_names]]
        self.command = position

    def on_episode_event(self, message: EpisodeEvent) -> None:
        """Reset the scene when an episode starts or is re-recorded."""
        if message.event in (EpisodeEvent.EVENT_START, EpisodeEvent.EVENT_RERECORD):
            self.reset()

    def on_timer(self) -> None:
        """One control step: apply the command, then publish the measured state and images."""
        command = self.driver.last_command if self.command is None else self.command
        try:
            observation = self.driver.step(command)
        except CommandError as error:
            self.get_logger().error(f"dropped command: {error}")
            self.command = None
            observation = self.driver.step(self.driver.last_command)
        self.steps += 1
        self.publish(observation)

    def publish(self, observation: Observation) -> None:
        """Publish joint states and (on camera steps) images with one shared stamp."""
        stamp = self.get_clock().now().to_msg()
        joints = JointState()
        joints.header.stamp = stamp
        joints.header.frame_id = self.frame_id
        joints.name = list(self.joint_names)
        joints.position = observation.qpos.tolist()
        joints.velocity = observation.qvel.tolist()
        self.joint_publisher.publish(joints)
        if self.steps % self.camera_every:
            return
        for camera, pixels in observation.images.items():
            image = Image()
            image.header.stamp = stamp
            image.header.frame_id = camera
            image.height, image.width = int(pixels.shape[0]), int(pixels.shape[1])
            image.encoding = "rgb8"
            image.is_bigendian = 0
            image.step = image.width * 3
            image.data = pixels.tobytes()
            self.image_publishers[camera].publish(image)

    def destroy_node(self) -> None:
        """Release the renderer with the node."""
        self.driver.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Run the simulated robot driver until shutdown."""
    rclpy.init(args=args)
    node = SimDriverNode()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        node.get_logger().info("interrupted")
    finally:
        node.destroy_node()
        rclpy.try_shutdown()

"""``sim_driver``: the ROS 2 host of AlohaSimDriver, standing in for a real robot driver.

Every control period (``control_rate_hz``, 50 Hz) it steps the simulator with the latest
``/command/executed`` joint command and publishes ``/joint_states``, the task objects' ground-truth
poses on ``/perception/object_poses`` (standing in for a perception system, frame ``world``) and, every
``camera_every_n_steps`` steps, one rgb8 ``sensor_msgs/Image`` per configured camera on
``camera_topic(name)`` (built by ``lwd_interfaces.messages``, as the runner builds them; no cv_bridge), all
with the same header stamp, taken from the node clock. Before any command arrives it holds the
current pose. An ``/episode/event`` START or RERECORD resets the scene with the next seed of the
stream that starts at ``seed``. A malformed command is logged and dropped; it never reaches
the physics. All simulation lives in the core; this file only converts messages.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseArray
from lwd_interfaces import topics
from lwd_interfaces.messages import joint_state, pose_array, rgb8_image
from lwd_interfaces.robot import CommandError, Observation
from lwd_interfaces.ros import advertise, declare_parameters, publish_message, run_node, subscribe
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState

from lwd_msgs.msg import EpisodeEvent
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.parameters import SIM_DRIVER

NODE_NAME = "sim_driver"
OBJECT_FRAME = "world"
"""header.frame_id of the object poses: the simulator reports them in its world frame."""


class SimDriverNode(Node):
    """Thin rclpy host: steps the simulator on a timer and converts messages."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        values = declare_parameters(self, SIM_DRIVER)
        self.camera_every = values["camera_every_n_steps"]
        self.next_seed = values["seed"]
        self.frame_id = values["frame_id"]
        task, cameras = values["task"], values["cameras"]
        height, width, control_rate_hz = values["image_height"], values["image_width"], values["control_rate_hz"]
        self.driver = AlohaSimDriver(task, cameras=cameras, height=height, width=width)
        self.joint_names = self.driver.joint_names
        self.command: np.ndarray | None = None
        self.steps = 0
        self.joint_publisher = advertise(self, JointState, topics.JOINT_STATES)
        self.object_publisher = advertise(self, PoseArray, topics.OBJECT_POSES)
        self.image_publishers = {
            camera: advertise(self, Image, topics.camera_topic(camera)) for camera in self.driver.cameras
        }
        subscribe(self, JointState, topics.EXECUTED_COMMAND, self.on_command)
        subscribe(self, EpisodeEvent, topics.EPISODE_EVENT, self.on_episode_event)
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
        """Publish joint states, object poses and (on camera steps) images with one shared stamp."""
        stamp = self.get_clock().now().nanoseconds
        names = self.joint_names
        publish_message(
            self.joint_publisher, joint_state(stamp, names, observation.qpos, observation.qvel, self.frame_id)
        )
        if len(observation.object_poses):
            publish_message(self.object_publisher, pose_array(stamp, observation.object_poses, OBJECT_FRAME))
        if self.steps % self.camera_every:
            return
        for camera, pixels in observation.images.items():
            publish_message(self.image_publishers[camera], rgb8_image(stamp, camera, pixels))

    def destroy_node(self) -> None:
        """Release the renderer with the node."""
        self.driver.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Run the simulated robot driver until shutdown."""
    run_node(SimDriverNode, args)

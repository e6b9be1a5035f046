"""Bring up one robot: policy, intervention arbiter, episode recorder and bag bridge.

    ros2 launch lwd bringup.launch.py robot_id:=aloha_01 checkpoint:=/opt/lwd/policies/v000000-bc \
        store_url:=sftp://fleet@store/fleet

``checkpoint`` is the verified policy folder the robot starts with; newer versions on the channel
arrive through the bag bridge's policy cache and are hot-swapped between chunks.

The hardware driver is launched separately (or use sim.launch.py for the MuJoCo robot).
Every node runs in the robot's namespace; parameters come from share/lwd/config/<node>.yaml.
"""

from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def config_parameters(node: str) -> dict:
    """The ``ros__parameters`` of share/lwd/config/<node>.yaml.

    The file is keyed by the bare node name, which as a params file matches only a node in the
    root namespace. Passed as a dict, launch_ros applies them to the node in its robot namespace.
    """
    path = Path(get_package_share_directory("lwd")) / "config" / f"{node}.yaml"
    return yaml.safe_load(path.read_text())[node]["ros__parameters"]


def generate_launch_description() -> LaunchDescription:
    robot_id = LaunchConfiguration("robot_id")
    store_url = LaunchConfiguration("store_url")
    channel = LaunchConfiguration("channel")
    task = LaunchConfiguration("task")
    intervention = config_parameters("intervention_node")
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot_id", default_value="aloha_01", description="this robot's fleet id"),
            DeclareLaunchArgument(
                "store_url", default_value="file://./fleet", description="fsspec URL of the fleet store"
            ),
            DeclareLaunchArgument("channel", default_value="stable", description="policy channel to follow"),
            DeclareLaunchArgument("checkpoint", description="verified policy folder to start with"),
            DeclareLaunchArgument(
                "task", default_value=str(intervention["task"]), description="task recorded with each episode"
            ),
            Node(
                package="lwd_policy",
                executable="policy_node",
                namespace=robot_id,
                parameters=[config_parameters("policy_node"), {"checkpoint": LaunchConfiguration("checkpoint")}],
                output="screen",
            ),
            Node(
                package="lwd_intervention",
                executable="intervention_node",
                namespace=robot_id,
                parameters=[intervention, {"robot_id": robot_id, "task": task}],
                output="screen",
            ),
            Node(
                package="lwd_logger",
                executable="recorder_node",
                namespace=robot_id,
                parameters=[config_parameters("recorder_node"), {"robot_id": robot_id}],
                output="screen",
            ),
            Node(
                package="lwd_logger",
                executable="bridge_node",
                namespace=robot_id,
                parameters=[
                    config_parameters("bridge_node"),
                    {"robot_id": robot_id, "store_url": store_url, "channel": channel},
                ],
                output="screen",
            ),
        ]
    )

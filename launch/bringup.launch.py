"""Bring up one robot: policy, intervention arbiter, episode recorder and bag bridge.

    ros2 launch lwd bringup.launch.py robot_id:=aloha_01 store_url:=sftp://fleet@store/fleet

The hardware driver is launched separately (or use sim.launch.py for the MuJoCo robot).
Every node runs in the robot's namespace; parameters come from share/lwd/config/<node>.yaml.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def config_file(name: str) -> PathJoinSubstitution:
    """Path of a parameter file installed by the lwd package."""
    return PathJoinSubstitution([FindPackageShare("lwd"), "config", name])


def generate_launch_description() -> LaunchDescription:
    robot_id = LaunchConfiguration("robot_id")
    store_url = LaunchConfiguration("store_url")
    channel = LaunchConfiguration("channel")
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot_id", default_value="aloha_01", description="this robot's fleet id"),
            DeclareLaunchArgument("store_url", default_value="file://./fleet", description="fsspec URL of the fleet store"),
            DeclareLaunchArgument("channel", default_value="stable", description="policy channel to follow"),
            Node(
                package="lwd_policy",
                executable="policy_node",
                namespace=robot_id,
                parameters=[config_file("policy_node.yaml")],
                output="screen",
            ),
            Node(
                package="lwd_intervention",
                executable="intervention_node",
                namespace=robot_id,
                parameters=[config_file("intervention_node.yaml"), {"robot_id": robot_id}],
                output="screen",
            ),
            Node(
                package="lwd_logger",
                executable="recorder_node",
                namespace=robot_id,
                parameters=[config_file("recorder_node.yaml"), {"robot_id": robot_id}],
                output="screen",
            ),
            Node(
                package="lwd_logger",
                executable="bridge_node",
                namespace=robot_id,
                parameters=[
                    config_file("bridge_node.yaml"),
                    {"robot_id": robot_id, "store_url": store_url, "channel": channel},
                ],
                output="screen",
            ),
        ]
    )

"""The fleet trainer: ingests committed episodes from the store, trains DIVL + QAM, publishes policies.

ros2 launch lwd trainer.launch.py store_url:=sftp://fleet@store/fleet
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "store_url", default_value="file://./fleet", description="fsspec URL of the fleet store"
            ),
            Node(
                package="lwd_learner",
                executable="trainer_node",
                parameters=[
                    PathJoinSubstitution([FindPackageShare("lwd"), "config", "trainer_node.yaml"]),
                    {"store_url": LaunchConfiguration("store_url")},
                ],
                output="screen",
            ),
        ]
    )

"""One simulated MuJoCo ALOHA robot with the full robot stack on top of it.

ros2 launch lwd sim.launch.py robot_id:=sim_01 task:=transfer_cube checkpoint:=runs/<run>/pretrained
"""

from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    robot_id = LaunchConfiguration("robot_id")
    task = LaunchConfiguration("task")
    share = Path(get_package_share_directory("lwd"))
    # As a dict (not a params file keyed by the bare node name), the parameters apply in the robot namespace.
    sim_parameters = yaml.safe_load((share / "config" / "sim_driver.yaml").read_text())["sim_driver"]["ros__parameters"]
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot_id", default_value="sim_01", description="this robot's fleet id"),
            DeclareLaunchArgument("task", default_value="transfer_cube", description="transfer_cube or insertion"),
            DeclareLaunchArgument("checkpoint", description="verified policy folder to start with"),
            Node(
                package="lwd_sim",
                executable="sim_driver",
                namespace=robot_id,
                parameters=[sim_parameters, {"task": task}],
                output="screen",
            ),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(str(share / "launch" / "bringup.launch.py")),
                launch_arguments={
                    "robot_id": robot_id,
                    "task": task,
                    "checkpoint": LaunchConfiguration("checkpoint"),
                }.items(),
            ),
        ]
    )

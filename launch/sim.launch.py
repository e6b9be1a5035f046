"""One simulated MuJoCo ALOHA robot with the full robot stack on top of it.

    ros2 launch lwd sim.launch.py robot_id:=sim_01 task:=transfer_cube
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    robot_id = LaunchConfiguration("robot_id")
    share = FindPackageShare("lwd")
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot_id", default_value="sim_01", description="this robot's fleet id"),
            DeclareLaunchArgument("task", default_value="transfer_cube", description="transfer_cube or insertion"),
            Node(
                package="lwd_sim",
                executable="sim_driver",
                namespace=robot_id,
                parameters=[
                    PathJoinSubstitution([share, "config", "sim_driver.yaml"]),
                    {"task": LaunchConfiguration("task")},
                ],
                output="screen",
            ),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "bringup.launch.py"])),
                launch_arguments={"robot_id": robot_id}.items(),
            ),
        ]
    )

"""N simulated MuJoCo ALOHA robots, each with the full robot stack (bringup.launch.py with use_sim:=true).

    ros2 launch lwd sim.launch.py robots:=3 task:=transfer_cube checkpoint:=runs/<run>/pretrained

Robot i (1-based) is ``sim_<i>`` (``sim_01``, ``sim_02``, ...) in its own namespace, with its own
spool and policy cache under ``<data_dir>/sim_<i>/`` and scene seeds starting at ``1000 * (i - 1)``,
so the robots see different scenes. All of them share one fleet store and channel.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

TASKS = ["transfer_cube", "insertion"]
CHANNELS = ["stable", "canary"]
LOG_LEVELS = ["debug", "info", "warn", "error", "fatal"]
SEED_STRIDE = 1000
MAX_ROBOTS = 32


def sim_robots(context: LaunchContext) -> list:
    """One scoped bringup include per robot, built once ``robots`` is known."""
    text = LaunchConfiguration("robots").perform(context)
    count = int(text) if text.strip().isdigit() else 0
    if not 1 <= count <= MAX_ROBOTS:
        raise ValueError(f"robots:= must be a whole number from 1 to {MAX_ROBOTS}, got {text!r}")
    bringup = Path(get_package_share_directory("lwd")) / "launch" / "bringup.launch.py"
    shared = {
        name: LaunchConfiguration(name)
        for name in ("task", "checkpoint", "store_url", "channel", "log_level", "data_dir")
    }
    robots = []
    for index in range(count):
        arguments = {
            **shared,
            "robot_id": f"sim_{index + 1:02d}",
            "robot_profile": "aloha_sim",
            "use_sim": "true",
            "sim_seed": str(SEED_STRIDE * index),
        }
        # Scoped, so one robot's launch configurations (robot_id, namespace) do not leak into the next.
        robots.append(
            GroupAction(
                [
                    IncludeLaunchDescription(
                        PythonLaunchDescriptionSource(str(bringup)), launch_arguments=arguments.items()
                    )
                ],
                scoped=True,
            )
        )
    return robots


def generate_launch_description() -> LaunchDescription:
    """Arguments, then the robots."""
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "robots", default_value="1", description=f"number of simulated robots (1 to {MAX_ROBOTS})"
            ),
            DeclareLaunchArgument(
                "task", default_value="transfer_cube", choices=TASKS, description="simulated task of every robot"
            ),
            DeclareLaunchArgument("checkpoint", description="verified policy folder every robot starts with"),
            DeclareLaunchArgument(
                "store_url", default_value="file://./fleet", description="fsspec URL of the fleet store"
            ),
            DeclareLaunchArgument(
                "channel", default_value="stable", choices=CHANNELS, description="policy channel to follow"
            ),
            DeclareLaunchArgument(
                "log_level", default_value="info", choices=LOG_LEVELS, description="log level of every node"
            ),
            DeclareLaunchArgument(
                "data_dir", default_value="lwd_data", description="robot i keeps its files in <data_dir>/sim_<i>/"
            ),
            OpaqueFunction(function=sim_robots),
        ]
    )

"""The fleet trainer: ingests committed episodes from the store, trains DIVL + QAM, publishes policies.

    ros2 launch lwd trainer.launch.py store_url:=sftp://fleet@store/fleet channel:=canary

Parameters come from share/lwd/config/trainer_node.yaml; the arguments below override it.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, RegisterEventHandler, Shutdown
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

CHANNELS = ["stable", "canary"]
LOG_LEVELS = ["debug", "info", "warn", "error", "fatal"]


def generate_launch_description() -> LaunchDescription:
    """Arguments, then the trainer node (in the root namespace: one trainer serves the fleet).

    The launch ends when the trainer exits (a bad store or policy stops it at start), instead of
    idling on with nothing running.
    """
    trainer = Node(
        package="lwd_learner",
        executable="trainer_node",
        name="trainer_node",
        parameters=[
            PathJoinSubstitution([FindPackageShare("lwd"), "config", "trainer_node.yaml"]),
            {
                name: ParameterValue(LaunchConfiguration(name), value_type=str)
                for name in ("store_url", "channel", "work_dir", "pretrained")
            },
        ],
        ros_arguments=["--log-level", LaunchConfiguration("log_level")],
        output="screen",
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "store_url", default_value="file://./fleet", description="fsspec URL of the fleet store"
            ),
            DeclareLaunchArgument(
                "channel",
                default_value="stable",
                choices=CHANNELS,
                description="channel moved to every published policy version",
            ),
            DeclareLaunchArgument(
                "work_dir", default_value="runs/trainer", description="caches, resume checkpoints and telemetry"
            ),
            DeclareLaunchArgument(
                "log_level", default_value="info", choices=LOG_LEVELS, description="log level of the trainer"
            ),
            DeclareLaunchArgument(
                "pretrained",
                default_value="",
                description="policy folder or store version to start from; '' = what the channel serves",
            ),
            trainer,
            RegisterEventHandler(
                OnProcessExit(
                    target_action=trainer,
                    on_exit=[LogInfo(msg="trainer_node exited; ending the launch"), Shutdown(reason="trainer exited")],
                )
            ),
        ]
    )

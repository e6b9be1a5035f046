"""Bring up one robot: policy, intervention arbiter, episode recorder and bag bridge (and the sim driver).

    ros2 launch lwd bringup.launch.py robot_id:=aloha_01 checkpoint:=/opt/lwd/policies/v000000-bc \\
        store_url:=sftp://fleet@store/fleet

``checkpoint`` is the verified policy folder the robot starts with; newer versions on the channel
arrive through the bag bridge's policy cache and are hot-swapped between chunks.

The hardware driver is launched separately, or ``use_sim:=true`` starts the MuJoCo sim driver in
its place. Every node runs in the robot's namespace (``namespace``, default ``robot_id``).
Parameters come from share/lwd/config/<node>.yaml, overridden by the robot profile
share/lwd/config/profiles/<robot_profile>.yaml and then by the launch arguments; the result is
written to ``<data_dir>/<robot_id>/parameters/<node>.yaml`` and given to the node. The robot's
other files live there too (spool/, policy_cache/). The policy node, recorder and bridge are
lifecycle nodes: this file configures and then activates each of them.
"""

from pathlib import Path
from typing import Any

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler, Shutdown
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

PROFILES = ["aloha", "aloha_sim"]
CHANNELS = ["stable", "canary"]
BOOLEANS = ["true", "false"]
LOG_LEVELS = ["debug", "info", "warn", "error", "fatal"]


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` applied key by key (nested mappings such as ``buttons`` merge too)."""
    result = dict(base)
    for key, value in override.items():
        result[key] = merged(result[key], value) if isinstance(value, dict) and key in result else value
    return result


def parameters_file(node: str, namespace: str, profile: str, overrides: dict[str, Any], folder: Path) -> str:
    """Write ``node``'s effective parameters to ``<folder>/<node>.yaml``; returns the path.

    The parameters are config/<node>.yaml, then config/profiles/<profile>.yaml, then ``overrides``.
    The file is keyed by the node's full name (``/<namespace>/<node>``), so it applies in the
    robot's namespace, and YAML keeps every type (``""``, ``[""]``, a robot id like ``"001"``), which
    launch_ros would otherwise re-parse from a dict. Operators can read the file to see exactly what
    each node was given.
    """
    config = Path(get_package_share_directory("lwd")) / "config"
    base = yaml.safe_load((config / f"{node}.yaml").read_text())[node]["ros__parameters"]
    profile_document = yaml.safe_load((config / "profiles" / f"{profile}.yaml").read_text()) or {}
    parameters = merged(merged(base, profile_document.get(node, {}).get("ros__parameters", {})), overrides)
    full_name = "/" + "/".join(part for part in (namespace.strip("/"), node) if part)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{node}.yaml"
    path.write_text(yaml.safe_dump({full_name: {"ros__parameters": parameters}}, sort_keys=False))
    return str(path)


def activate_on_start(node: LifecycleNode, executable: str) -> list:
    """Configure ``node`` as soon as it is up and activate it once it reaches ``inactive``.

    A failed configure (the node logged why) stops the whole bringup with that reason: a robot must
    not run on with a policy, recorder or bridge that never came up.
    """
    return [
        RegisterEventHandler(
            OnStateTransition(
                target_lifecycle_node=node,
                start_state="configuring",
                goal_state="inactive",
                entities=[
                    EmitEvent(
                        event=ChangeState(
                            lifecycle_node_matcher=matches_action(node),
                            transition_id=Transition.TRANSITION_ACTIVATE,
                        )
                    )
                ],
            )
        ),
        RegisterEventHandler(
            OnStateTransition(
                target_lifecycle_node=node,
                start_state="configuring",
                goal_state="unconfigured",
                entities=[
                    LogInfo(msg=f"{executable} failed to configure (its log above says why); stopping the robot"),
                    Shutdown(reason=f"{executable} failed to configure"),
                ],
            )
        ),
        EmitEvent(
            event=ChangeState(
                lifecycle_node_matcher=matches_action(node),
                transition_id=Transition.TRANSITION_CONFIGURE,
            )
        ),
    ]


def episode_instruction(instruction: str, task: str, use_sim: bool) -> str:
    """The instruction every episode records: the argument, or in simulation the task's first instruction."""
    if instruction:
        return instruction
    if not use_sim:
        raise ValueError("bringup needs instruction:='<what the robot is asked to do>' (recorded with every episode)")
    from lwd_sim.tasks import TASKS

    if task not in TASKS:
        raise ValueError(f"task:={task} is not a simulated task; choose one of {sorted(TASKS)}")
    return TASKS[task].instructions[0]


def robot_nodes(context: LaunchContext) -> list:
    """The robot's nodes, built once the launch arguments are known."""

    def argument(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    robot_id = argument("robot_id")
    namespace = argument("namespace")
    profile = argument("robot_profile")
    robot_dir = Path(argument("data_dir")).expanduser().resolve() / robot_id
    spool_dir = str(robot_dir / "spool")
    cache_dir = str(robot_dir / "policy_cache")
    common = {"use_sim_time": argument("use_sim_time") == "true"}
    use_sim = argument("use_sim") == "true"
    instruction = episode_instruction(argument("instruction"), argument("task"), use_sim)
    ros_arguments = ["--log-level", argument("log_level")]

    def parameters(node: str, overrides: dict[str, Any]) -> list[str]:
        return [parameters_file(node, namespace, profile, {**overrides, **common}, robot_dir / "parameters")]

    policy = LifecycleNode(
        package="lwd_policy",
        executable="policy_node",
        name="policy_node",
        namespace=namespace,
        parameters=parameters(
            "policy_node",
            {"checkpoint": argument("checkpoint"), "policy_cache_dir": cache_dir, "instruction": instruction},
        ),
        ros_arguments=ros_arguments,
        output="screen",
    )
    recorder = LifecycleNode(
        package="lwd_logger",
        executable="recorder_node",
        name="recorder_node",
        namespace=namespace,
        parameters=parameters("recorder_node", {"robot_id": robot_id, "spool_dir": spool_dir}),
        ros_arguments=ros_arguments,
        output="screen",
    )
    bridge = LifecycleNode(
        package="lwd_logger",
        executable="bridge_node",
        name="bridge_node",
        namespace=namespace,
        parameters=parameters(
            "bridge_node",
            {
                "robot_id": robot_id,
                "store_url": argument("store_url"),
                "channel": argument("channel"),
                "spool_dir": spool_dir,
                "cache_dir": cache_dir,
                **({"trusted_keys": [argument("trusted_keys")]} if argument("trusted_keys") else {}),
            },
        ),
        ros_arguments=ros_arguments,
        output="screen",
    )
    intervention = Node(
        package="lwd_intervention",
        executable="intervention_node",
        name="intervention_node",
        namespace=namespace,
        parameters=parameters(
            "intervention_node", {"robot_id": robot_id, "task": argument("task"), "instruction": instruction}
        ),
        ros_arguments=ros_arguments,
        output="screen",
    )
    actions = [policy, recorder, bridge, intervention]
    for node, executable in ((policy, "policy_node"), (recorder, "recorder_node"), (bridge, "bridge_node")):
        actions += activate_on_start(node, executable)
    if use_sim:
        actions.append(
            Node(
                package="lwd_sim",
                executable="sim_driver",
                name="sim_driver",
                namespace=namespace,
                parameters=parameters("sim_driver", {"task": argument("task"), "seed": int(argument("sim_seed"))}),
                ros_arguments=ros_arguments,
                output="screen",
            )
        )
    return actions


def generate_launch_description() -> LaunchDescription:
    """Arguments (see ``ros2 launch lwd bringup.launch.py --show-args``), then the robot's nodes."""
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "robot_id", default_value="aloha_01", description="this robot's fleet id, recorded in every episode"
            ),
            DeclareLaunchArgument(
                "robot_profile",
                default_value="aloha",
                choices=PROFILES,
                description="robot profile: parameter overrides in config/profiles/<robot_profile>.yaml",
            ),
            DeclareLaunchArgument(
                "use_sim",
                default_value="false",
                choices=BOOLEANS,
                description="start the MuJoCo sim driver as this robot's hardware",
            ),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                choices=BOOLEANS,
                description="follow /clock instead of the wall clock (for ros2 bag play --clock)",
            ),
            DeclareLaunchArgument(
                "store_url",
                default_value="file://./fleet",
                description="fsspec URL of the fleet store: file://, sftp://user@host/path, s3://bucket/prefix",
            ),
            DeclareLaunchArgument(
                "channel", default_value="stable", choices=CHANNELS, description="policy channel to follow"
            ),
            DeclareLaunchArgument(
                "namespace",
                default_value=LaunchConfiguration("robot_id"),
                description="ROS namespace of the robot's nodes and topics (default: robot_id)",
            ),
            DeclareLaunchArgument(
                "log_level", default_value="info", choices=LOG_LEVELS, description="log level of every node"
            ),
            DeclareLaunchArgument("checkpoint", description="verified policy folder to start with"),
            DeclareLaunchArgument(
                "task", default_value="transfer_cube", description="task recorded with each episode (and simulated)"
            ),
            DeclareLaunchArgument(
                "instruction",
                default_value="",
                description="instruction recorded with every episode; '' = the sim task's first (use_sim only)",
            ),
            DeclareLaunchArgument(
                "data_dir",
                default_value="lwd_data",
                description="the robot keeps its spool and policy cache in <data_dir>/<robot_id>/",
            ),
            DeclareLaunchArgument(
                "trusted_keys",
                default_value="",
                description="release public key file the bridge trusts ('' = the bridge's YAML or profile)",
            ),
            DeclareLaunchArgument(
                "sim_seed", default_value="0", description="seed of the sim driver's first scene (use_sim only)"
            ),
            OpaqueFunction(function=robot_nodes),
        ]
    )

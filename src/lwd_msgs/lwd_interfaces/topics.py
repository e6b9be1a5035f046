"""The topic contract shared by the robot nodes, the recorder and the learner.

Every control step publishes one message on each per-step topic, all with the
same header stamp; that stamp is what the learner aligns on. Camera topics are
``camera_topic(name)`` for each configured camera. Every topic also has a QoS
class (``topic_qos``) that each publisher and subscriber of it uses, so that no
pair is QoS-incompatible; ``lwd_interfaces.ros`` turns a class into an rclpy profile.
"""

from __future__ import annotations

JOINT_STATES = "/joint_states"
"""sensor_msgs/msg/JointState: measured positions [rad, gripper 0..1] and velocities."""

EXECUTED_COMMAND = "/command/executed"
"""sensor_msgs/msg/JointState: the joint-position command actually sent to the robot."""

POLICY_COMMAND = "/policy/command"
"""sensor_msgs/msg/JointState: what the policy proposed for this step (recorded even when overridden)."""

ACTION_CHUNK = "/policy/action_chunk"
"""lwd_msgs/msg/ActionChunk: each chunk the policy produced."""

POLICY_VERSION = "/policy/version"
"""lwd_msgs/msg/PolicyVersion: the version the robot runs, published on every change."""

INTERVENTION_STATE = "/intervention/state"
"""lwd_msgs/msg/InterventionState: who controlled this step."""

OBJECT_POSES = "/perception/object_poses"
"""geometry_msgs/msg/PoseArray: the task objects' poses in a fixed per-task order, from a perception system
(the simulator publishes ground truth). Optional: only policies with object slots read it."""

TELEOP_JOY = "/teleop/joy"
"""sensor_msgs/msg/Joy: the operator's gamepad."""

TELEOP_COMMAND = "/teleop/command"
"""sensor_msgs/msg/JointState: leader-arm or scripted-operator joint commands."""

EPISODE_EVENT = "/episode/event"
"""lwd_msgs/msg/EpisodeEvent: start, end, discard, rerecord."""

REWARD_LABEL = "/episode/reward"
"""lwd_msgs/msg/RewardLabel: the episode's outcome label."""

CAMERA_PREFIX = "/camera"
IMAGE_TYPE = "sensor_msgs/msg/Image"
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"


def relative(topic: str) -> str:
    """The name nodes use, so a namespace applies: ``/joint_states`` -> ``joint_states``.

    The constants here are the absolute contract names, which bags record. A node launched
    with ``namespace=robot_id`` creates its publishers and subscriptions with ``relative(topic)``,
    which resolves to ``/<robot_id>/joint_states``; without a namespace it resolves to the
    contract name itself.
    """
    return topic.lstrip("/")


def camera_topic(camera: str) -> str:
    """Topic of the raw rgb8 image stream of one named camera, e.g. ``/camera/top/image_raw``."""
    if not camera or "/" in camera:
        raise ValueError(f"invalid camera name {camera!r}")
    return f"{CAMERA_PREFIX}/{camera}/image_raw"


TOPIC_TYPES: dict[str, str] = {
    JOINT_STATES: JOINT_STATE_TYPE,
    EXECUTED_COMMAND: JOINT_STATE_TYPE,
    POLICY_COMMAND: JOINT_STATE_TYPE,
    ACTION_CHUNK: "lwd_msgs/msg/ActionChunk",
    POLICY_VERSION: "lwd_msgs/msg/PolicyVersion",
    INTERVENTION_STATE: "lwd_msgs/msg/InterventionState",
    OBJECT_POSES: "geometry_msgs/msg/PoseArray",
    TELEOP_JOY: "sensor_msgs/msg/Joy",
    TELEOP_COMMAND: JOINT_STATE_TYPE,
    EPISODE_EVENT: "lwd_msgs/msg/EpisodeEvent",
    REWARD_LABEL: "lwd_msgs/msg/RewardLabel",
}
"""Message type of every fixed topic; camera topics are all ``IMAGE_TYPE``."""


SENSOR_DATA = "sensor_data"
"""QoS class: best effort, volatile, keep last 5 (rclpy's sensor-data profile).

For cameras, joint states and perceived object poses. A best-effort subscription matches reliable and
best-effort publishers alike, so any robot driver can feed the stack.
"""

RELIABLE = "reliable"
"""QoS class: reliable, volatile, keep last 10. For commands, chunks, the gamepad, episode events and labels."""

LATCHED = "latched"
"""QoS class: reliable, transient local, keep last 1.

For state that a node joining late needs at once: the policy version and the
intervention mode. Publisher and subscriber must both use it (a transient-local
subscription does not match a volatile publisher).
"""

TOPIC_QOS: dict[str, str] = {
    JOINT_STATES: SENSOR_DATA,
    EXECUTED_COMMAND: RELIABLE,
    POLICY_COMMAND: RELIABLE,
    ACTION_CHUNK: RELIABLE,
    POLICY_VERSION: LATCHED,
    INTERVENTION_STATE: LATCHED,
    OBJECT_POSES: SENSOR_DATA,
    TELEOP_JOY: RELIABLE,
    TELEOP_COMMAND: RELIABLE,
    EPISODE_EVENT: RELIABLE,
    REWARD_LABEL: RELIABLE,
}
"""QoS class of every fixed topic; camera topics are all ``SENSOR_DATA``."""


def topic_qos(topic: str) -> str:
    """The QoS class of a contract topic (absolute name), camera topics included."""
    if topic.startswith(CAMERA_PREFIX + "/"):
        return SENSOR_DATA
    try:
        return TOPIC_QOS[topic]
    except KeyError:
        raise KeyError(f"{topic} is not a contract topic") from None

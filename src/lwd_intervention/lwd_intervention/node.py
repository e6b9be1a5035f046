"""``intervention_node``: the ROS 2 host of the arbiter, the operator inputs and the episode labeller.

Every ``/joint_states`` message is one control step: the node runs
:class:`~lwd_intervention.arbiter.Arbiter` on it with the latest ``/policy/command`` and
``/teleop/command`` and publishes ``/command/executed`` and ``/intervention/state`` with the
joint state's stamp, as docs/contracts.md requires (all per-step messages share the step time);
``/intervention/state`` is transient local, so a console that starts late sees the mode at once.
It stays a plain node, not a lifecycle one: the arbiter is the safety layer (pause, e-stop,
holding on a silent policy) and must run whenever the robot does.
A timer at the control rate watches for a silent robot driver. Gamepad
(``/teleop/joy``) and keyboard-console buttons become operator events; success and
failure label and end the episode (``/episode/reward`` then ``/episode/event``).
Services: ``~/label_episode`` (lwd_msgs/srv/LabelEpisode), ``~/set_mode`` (lwd_msgs/srv/SetMode).
All decisions live in the cores; this file only converts messages.
"""

from __future__ import annotations

import numpy as np
from lwd_interfaces import topics
from lwd_interfaces.messages import stamp_ns
from lwd_interfaces.ros import advertise, declare_parameters, publish_message, qos_profile, run_node, subscribe
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy

from lwd_intervention.arbiter import (
    NS_PER_S,
    ArbiterInputError,
    StepInput,
    TeleopSample,
)
from lwd_intervention.joy import JoyInputError, JoyMapper
from lwd_intervention.keyboard import KEYBOARD_BUTTON_MAP, KEYBOARD_JOY_TOPIC
from lwd_intervention.labels import RewardLabelRecord
from lwd_intervention.messages import (
    episode_event_msg,
    intervention_state_msg,
    joint_command_msg,
    reward_label_msg,
)
from lwd_intervention.parameters import INTERVENTION_NODE, parameters_from_values
from lwd_intervention.session import SessionResult
from lwd_msgs.msg import EpisodeEvent, InterventionState, PolicyVersion, RewardLabel
from lwd_msgs.srv import LabelEpisode, SetMode

NODE_NAME = "intervention_node"
RECORDER_NODE = "recorder_node"
"""The recorder's node name (as bringup names it), whose subscription the first episode waits for."""


class InterventionNode(Node):
    """Thin rclpy host: message conversion around the arbiter, input mappers and labeller."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        settings = parameters_from_values(declare_parameters(self, INTERVENTION_NODE))
        if not settings.instruction.strip():
            raise ValueError(
                "parameter 'instruction' is empty: every episode must record what the robot was asked to do "
                "(bringup passes instruction:=..., or the sim task's first instruction with use_sim:=true)"
            )
        self.joint_state_timeout_ns = int(settings.joint_state_timeout_s * NS_PER_S)
        self.session = settings.session(logger=self.get_logger())
        self.joy_mappers = {
            "operator/joy": settings.joy_mapper(),
            "operator/keyboard": JoyMapper(KEYBOARD_BUTTON_MAP, len(KEYBOARD_BUTTON_MAP), starts_released=True),
        }
        self.joint_names: list[str] = []
        self.policy: np.ndarray | None = None
        self.policy_stamp_ns: int | None = None
        self.teleop: TeleopSample | None = None
        self.deadman = False

        self.executed_pub = advertise(self, JointState, topics.EXECUTED_COMMAND)
        self.state_pub = advertise(self, InterventionState, topics.INTERVENTION_STATE)
        self.event_pub = advertise(self, EpisodeEvent, topics.EPISODE_EVENT)
        self.reward_pub = advertise(self, RewardLabel, topics.REWARD_LABEL)
        subscribe(self, JointState, topics.JOINT_STATES, self._on_joint_states)
        subscribe(self, JointState, topics.POLICY_COMMAND, self._on_policy_command)
        subscribe(self, JointState, topics.TELEOP_COMMAND, self._on_teleop_command)
        subscribe(self, PolicyVersion, topics.POLICY_VERSION, self._on_policy_version)
        subscribe(self, Joy, topics.TELEOP_JOY, lambda msg: self._on_joy("operator/joy", msg))
        self.create_subscription(
            Joy,
            topics.relative(KEYBOARD_JOY_TOPIC),
            lambda msg: self._on_joy("operator/keyboard", msg),
            qos_profile(topics.RELIABLE),
        )
        self.create_service(LabelEpisode, "~/label_episode", self._on_label_episode)
        self.create_service(SetMode, "~/set_mode", self._on_set_mode)
        self.create_timer(1.0 / settings.control_rate_hz, self._check_joint_states)
        self.last_joint_state_ns: int | None = None
        self.first_episode_pending = self.session.auto_start

    # ------------------------------------------------------------- inputs

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_joint_states(self, msg: JointState) -> None:
        if msg.name:
            self.joint_names = list(msg.name)
        self.last_joint_state_ns = self._now_ns()
        self._control_step(stamp_ns(msg.header.stamp) or self.last_joint_state_ns, np.asarray(msg.position, float))

    def _on_policy_command(self, msg: JointState) -> None:
        self.policy = np.asarray(msg.position, dtype=np.float64)
        self.policy_stamp_ns = stamp_ns(msg.header.stamp) or self._now_ns()

    def _on_teleop_command(self, msg: JointState) -> None:
        stamp = stamp_ns(msg.header.stamp) or self._now_ns()
        positions = np.asarray(msg.position, dtype=np.float64)
        self.teleop = TeleopSample(positions, stamp, self.session.teleop_source)

    def _on_policy_version(self, msg: PolicyVersion) -> None:
        self.session.policy_version = msg.version

    def _on_joy(self, label_source: str, msg: Joy) -> None:
        try:
            update = self.joy_mappers[label_source].update(msg.buttons)
        except JoyInputError as error:
            self.get_logger().warning(f"{label_source}: {error}", throttle_duration_sec=5.0)
            return
        if label_source == "operator/joy":
            self.deadman = update.deadman
        for event in update.events:
            self._publish(self.session.handle(event, label_source, self._now_ns()))

    # ------------------------------------------------------------- control

    def _check_joint_states(self) -> None:
        if self.last_joint_state_ns is None or self._now_ns() - self.last_joint_state_ns > self.joint_state_timeout_ns:
            self.get_logger().warning(
                "no /joint_states from the robot driver: not commanding (the robot holds its last command)",
                throttle_duration_sec=5.0,
            )

    def _recorder_listening(self) -> bool:
        """Whether this robot's recorder subscribes to the episode events (it does once it is active).

        The first episode waits for it: bringup starts the recorder as a lifecycle node, and a START
        sent before it is active would leave the whole first episode unrecorded.
        """
        for endpoint in self.get_subscriptions_info_by_topic(self.event_pub.topic_name):
            if endpoint.node_name == RECORDER_NODE and endpoint.node_namespace == self.get_namespace():
                return True
        self.get_logger().info("waiting for the recorder before starting the first episode", once=True)
        return False

    def _control_step(self, now: int, measured: np.ndarray) -> None:
        if self.first_episode_pending and self._recorder_listening():
            self.first_episode_pending = False
            self._publish(self.session.start_episode(now))
        step = StepInput(now, measured, self.policy, self.teleop, self.deadman, policy_stamp_ns=self.policy_stamp_ns)
        try:
            output = self.session.step(step)
        except ArbiterInputError as error:
            self.get_logger().error(str(error), throttle_duration_sec=5.0)
            return
        publish_message(self.executed_pub, joint_command_msg(output.command, output.stamp_ns, self.joint_names))
        publish_message(self.state_pub, intervention_state_msg(output))

    # ------------------------------------------------------------- episodes

    def _publish(self, result: SessionResult) -> None:
        if not result.accepted:
            self.get_logger().warning(result.message)
            return
        self.get_logger().info(result.message)
        for record in result.records:
            if isinstance(record, RewardLabelRecord):
                publish_message(self.reward_pub, reward_label_msg(record))
                if self.session.closed_stats is not None:
                    self.get_logger().info(f"episode stats: {self.session.closed_stats.as_metadata()}")
            else:
                publish_message(self.event_pub, episode_event_msg(record))

    # ------------------------------------------------------------- services

    def _on_label_episode(self, request: LabelEpisode.Request, response: LabelEpisode.Response):
        result = self.session.label_and_end(
            request.success, "operator/service", self._now_ns(), note=request.note, episode_id=request.episode_id
        )
        self._publish(result)
        response.accepted = result.accepted
        response.message = result.message
        return response

    def _on_set_mode(self, request: SetMode.Request, response: SetMode.Response):
        result = self.session.set_mode(request.mode, request.reset_estop)
        response.accepted, response.message = result.accepted, result.message
        response.mode = int(self.session.arbiter.mode)
        return response


def main(args: list[str] | None = None) -> None:
    """Run the intervention node until shutdown."""
    run_node(InterventionNode, args)

"""``keyboard_teleop``: the desk-session console as a ROS 2 node.

Keys become operator events, sent as presses of a virtual gamepad on
:data:`~lwd_intervention.keyboard.KEYBOARD_JOY_TOPIC`, which ``intervention_node``
maps with the same fixed layout. The screen shows the mode and source from
``/intervention/state`` and the episode id and timer from ``/episode/event``.
All logic is in :class:`~lwd_intervention.keyboard.KeyboardConsole`; the terminal is
:class:`~lwd_intervention.terminal.RawTerminal`.
"""

from __future__ import annotations

import rclpy
from lwd_interfaces import topics
from lwd_interfaces.ros import declare_parameters, init_until_signalled, qos_profile, subscribe
from rclpy.node import Node
from sensor_msgs.msg import Joy

from lwd_intervention.arbiter import NS_PER_S
from lwd_intervention.keyboard import KEYBOARD_JOY_TOPIC, QUIT_KEY, KeyboardConsole
from lwd_intervention.labels import EpisodeEventKind
from lwd_intervention.modes import Mode
from lwd_intervention.parameters import KEYBOARD_TELEOP
from lwd_intervention.terminal import RawTerminal
from lwd_msgs.msg import EpisodeEvent, InterventionState

NODE_NAME = "keyboard_teleop"


class KeyboardTeleopNode(Node):
    """Publishes key presses as virtual-gamepad Joy messages and tracks state for the screen."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.refresh_period_s = 1.0 / declare_parameters(self, KEYBOARD_TELEOP)["refresh_hz"]
        self.console = KeyboardConsole()
        self.joy_pub = self.create_publisher(Joy, topics.relative(KEYBOARD_JOY_TOPIC), qos_profile(topics.RELIABLE))
        subscribe(self, InterventionState, topics.INTERVENTION_STATE, self._on_state)
        subscribe(self, EpisodeEvent, topics.EPISODE_EVENT, self._on_episode_event)

    def _on_state(self, msg: InterventionState) -> None:
        self.console.on_state(Mode(msg.mode), msg.source)

    def _on_episode_event(self, msg: EpisodeEvent) -> None:
        stamp = int(msg.header.stamp.sec) * NS_PER_S + int(msg.header.stamp.nanosec)
        self.console.on_episode_event(EpisodeEventKind(msg.event), msg.episode_id, stamp)

    def send_key(self, key: str) -> bool:
        """Publish the press and release of ``key``'s event; False for an unbound key."""
        event = self.console.event_for_key(key)
        if event is None:
            return False
        for buttons in (self.console.buttons_for(event), [0] * len(self.console.buttons_for(event))):
            msg = Joy()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.buttons = buttons
            self.joy_pub.publish(msg)
        return True


def main(args: list[str] | None = None) -> None:
    """Run the console until ``q`` or Ctrl-C."""
    stop = init_until_signalled(args)
    node = KeyboardTeleopNode()
    try:
        with RawTerminal() as terminal:
            while not stop.is_set():
                rclpy.spin_once(node, timeout_sec=0.0)
                terminal.draw(node.console.render(node.get_clock().now().nanoseconds))
                key = terminal.read_key(node.refresh_period_s)
                if key is None:
                    continue
                if key.lower() == QUIT_KEY:
                    break
                node.send_key(key)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()

"""The intervention node's parameters off ROS: read ``config/intervention_node.yaml`` and build the cores.

The ``lwd`` runner wires the same cores in-process that ``intervention_node`` hosts
under ROS 2; reading the same YAML keeps both hosts configured identically. Every
value is checked, and a bad file raises :class:`ParameterError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lwd_interfaces.parameters import Parameter, ParameterError, ParameterTable
from lwd_interfaces.robots import ROBOTS, robot_description

from lwd_intervention.arbiter import Arbiter, ArbiterConfig, WarningLogger
from lwd_intervention.joy import UNMAPPED, JoyMapper
from lwd_intervention.labels import EpisodeLabeler
from lwd_intervention.modes import SOURCE_LEADER
from lwd_intervention.session import EpisodeTemplate, InterventionSession

NODE_NAME = "intervention_node"
_ARBITER = ArbiterConfig()
_BUTTON = "gamepad button index of the {} event; -1 = unmapped"

DEFAULT_BUTTONS: dict[str, int] = {
    "success": 0,
    "failure": 1,
    "rerecord": 2,
    "discard": 3,
    "takeover": 4,
    "hand_back": 5,
    "pause": 6,
    "reset_estop": 7,
    "estop": 8,
    "deadman": UNMAPPED,
}
"""Button per event on an Xbox-layout gamepad under joy_node."""

INTERVENTION_NODE = ParameterTable(
    NODE_NAME,
    [
        Parameter("control_rate_hz", 50.0, "rate of the /joint_states watchdog [Hz]", 1.0, 1000.0),
        Parameter("joint_state_timeout_s", 0.1, "warn when the robot driver is silent this long [s]", 0.001, 10.0),
        Parameter("robot", "aloha", "robot description that gives the joint command's length", choices=tuple(ROBOTS)),
        Parameter(
            "max_step_delta", _ARBITER.max_step_delta, "largest joint change between commands [rad | 0..1]", 0.0001, 1.0
        ),
        Parameter(
            "agreement_tolerance",
            _ARBITER.agreement_tolerance,
            "teleop vs measured state for an immediate takeover [rad]",
            0.0,
            3.2,
        ),
        Parameter("blend_steps", _ARBITER.blend_steps, "steps of a takeover / hand-back blend", 1, 10000),
        Parameter(
            "teleop_timeout_s", _ARBITER.teleop_timeout_s, "older teleop input pauses the robot [s]", 0.001, 10.0
        ),
        Parameter("require_deadman", _ARBITER.require_deadman, "pause TELEOP whenever the deadman is released"),
        Parameter(
            "policy_timeout_s",
            _ARBITER.policy_timeout_s,
            "a policy command older than this is not executed [s]",
            0.001,
            10.0,
        ),
        Parameter("teleop_source", SOURCE_LEADER, "source recorded for /teleop/command (operator/scripted in sim)"),
        Parameter("robot_id", "robot-0", "this robot's fleet id"),
        Parameter("task", "transfer_cube", "task recorded with each episode"),
        Parameter("instruction", "", "instruction recorded with each episode (required by the node)"),
        Parameter("auto_start_episodes", True, "start the next episode as soon as one ends or is discarded"),
        Parameter("auto_label", False, "label from the simulator's ground truth (sim only)"),
        Parameter("joy_button_count", 11, "buttons of the gamepad under joy_node", 1, 64),
        *(
            Parameter(f"buttons.{event}", index, _BUTTON.format(event), -1, 63)
            for event, index in DEFAULT_BUTTONS.items()
        ),
    ],
)
"""Every ``intervention_node`` parameter; the arbiter's defaults are ``ArbiterConfig``'s own."""

KEYBOARD_TELEOP = ParameterTable(
    "keyboard_teleop", [Parameter("refresh_hz", 10.0, "screen redraws per second [Hz]", 0.5, 100.0)]
)
"""The parameters of the keyboard console (``keyboard_teleop``)."""


@dataclass(frozen=True)
class InterventionParameters:
    """Every ``intervention_node`` parameter, read into the cores' configuration."""

    control_rate_hz: float
    joint_state_timeout_s: float
    arbiter: ArbiterConfig
    teleop_source: str
    robot_id: str
    task: str
    instruction: str
    auto_start_episodes: bool
    auto_label: bool
    joy_button_count: int
    buttons: Mapping[str, int]

    def joy_mapper(self) -> JoyMapper:
        """The gamepad mapper; raises JoyConfigError for a bad button map."""
        events = {name: index for name, index in self.buttons.items() if name != "deadman"}
        return JoyMapper(events, self.joy_button_count, self.buttons.get("deadman", UNMAPPED))

    def session(self, logger: WarningLogger | None = None) -> InterventionSession:
        """A fresh intervention session configured by these parameters."""
        return InterventionSession(
            Arbiter(self.arbiter, logger=logger),
            EpisodeLabeler(auto_label=self.auto_label),
            EpisodeTemplate(self.robot_id, self.task, self.instruction),
            teleop_source=self.teleop_source,
            auto_start=self.auto_start_episodes,
        )


def parameters_from_values(values: Mapping[str, Any]) -> InterventionParameters:
    """InterventionParameters from every parameter's value (flat, as :meth:`ParameterTable.read` returns)."""
    arbiter_fields = ("max_step_delta", "agreement_tolerance", "blend_steps", "teleop_timeout_s", "policy_timeout_s")
    try:
        arbiter = ArbiterConfig(
            dof=robot_description(values["robot"]).dof,
            **{name: values[name] for name in arbiter_fields},
            require_deadman=values["require_deadman"],
        )
    except ValueError as error:
        raise ParameterError(str(error)) from None
    prefix = "buttons."
    return InterventionParameters(
        arbiter=arbiter,
        buttons={name[len(prefix) :]: index for name, index in values.items() if name.startswith(prefix)},
        **{
            name: values[name]
            for name in (
                "control_rate_hz",
                "joint_state_timeout_s",
                "teleop_source",
                "robot_id",
                "task",
                "instruction",
                "auto_start_episodes",
                "auto_label",
                "joy_button_count",
            )
        },
    )


def parameters_from_mapping(ros_parameters: Mapping[str, Any]) -> InterventionParameters:
    """Validate a ``ros__parameters`` mapping (nested ``buttons``) into InterventionParameters."""
    return parameters_from_values(INTERVENTION_NODE.read(ros_parameters))


def load_parameters(path: str | Path) -> InterventionParameters:
    """Read ``<path>`` (ROS 2 parameter YAML) and validate the ``intervention_node`` section."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ParameterError(f"cannot read parameter file {path}: {error}") from None
    try:
        section = document[NODE_NAME]["ros__parameters"]
    except (KeyError, TypeError):
        raise ParameterError(f"{path} has no '{NODE_NAME}: ros__parameters:' section") from None
    return parameters_from_mapping(section)

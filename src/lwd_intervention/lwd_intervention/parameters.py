"""The intervention node's parameters off ROS: read ``config/intervention_node.yaml`` and build the cores.

The ``lwd`` runner wires the same cores in-process that ``intervention_node`` hosts
under ROS 2; reading the same YAML keeps both hosts configured identically. Every
value is checked, and a bad file raises :class:`ParameterError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lwd_intervention.arbiter import Arbiter, ArbiterConfig
from lwd_intervention.joy import UNMAPPED, JoyMapper
from lwd_intervention.labels import EpisodeLabeler
from lwd_intervention.modes import SOURCE_LEADER
from lwd_intervention.session import EpisodeTemplate, InterventionSession

NODE_NAME = "intervention_node"

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
"""Button per event on an Xbox-layout gamepad under joy_node; the node's declared defaults."""


class ParameterError(ValueError):
    """A parameter file is missing, malformed, or has a value of the wrong type."""


@dataclass(frozen=True)
class InterventionParameters:
    """Every ``intervention_node`` parameter, with the node's defaults."""

    control_rate_hz: float = 50.0
    joint_state_timeout_s: float = 0.1
    arbiter: ArbiterConfig = field(default_factory=ArbiterConfig)
    policy_timeout_s: float = 0.1
    teleop_source: str = SOURCE_LEADER
    robot_id: str = "robot-0"
    task: str = "transfer_cube"
    instruction: str = ""
    auto_start_episodes: bool = True
    auto_label: bool = False
    joy_button_count: int = 11
    buttons: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_BUTTONS))

    def joy_mapper(self) -> JoyMapper:
        """The gamepad mapper; raises JoyConfigError for a bad button map."""
        events = {name: index for name, index in self.buttons.items() if name != "deadman"}
        return JoyMapper(events, self.joy_button_count, self.buttons.get("deadman", UNMAPPED))

    def session(self) -> InterventionSession:
        """A fresh intervention session configured by these parameters."""
        return InterventionSession(
            Arbiter(self.arbiter),
            EpisodeLabeler(auto_label=self.auto_label),
            EpisodeTemplate(self.robot_id, self.task, self.instruction),
            teleop_source=self.teleop_source,
            auto_start=self.auto_start_episodes,
        )


def _typed(values: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = values.pop(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is str and value is None:
        value = ""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ParameterError(f"parameter {key!r} must be {kind.__name__}, got {value!r}")
    return value


def parameters_from_mapping(ros_parameters: Mapping[str, Any]) -> InterventionParameters:
    """Validate a ``ros__parameters`` mapping (nested ``buttons``) into InterventionParameters."""
    values = dict(ros_parameters)
    buttons_section = values.pop("buttons", {}) or {}
    if not isinstance(buttons_section, Mapping):
        raise ParameterError(f"parameter 'buttons' must be a mapping of event -> index, got {buttons_section!r}")
    buttons = dict(DEFAULT_BUTTONS)
    for name, index in buttons_section.items():
        if isinstance(index, bool) or not isinstance(index, int):
            raise ParameterError(f"parameter 'buttons.{name}' must be an integer index, got {index!r}")
        buttons[str(name)] = index
    defaults = ArbiterConfig()
    try:
        arbiter = ArbiterConfig(
            dof=_typed(values, "dof", int, defaults.dof),
            max_step_delta=_typed(values, "max_step_delta", float, defaults.max_step_delta),
            agreement_tolerance=_typed(values, "agreement_tolerance", float, defaults.agreement_tolerance),
            blend_steps=_typed(values, "blend_steps", int, defaults.blend_steps),
            teleop_timeout_s=_typed(values, "teleop_timeout_s", float, defaults.teleop_timeout_s),
            require_deadman=_typed(values, "require_deadman", bool, defaults.require_deadman),
        )
    except ParameterError:
        raise
    except ValueError as error:
        raise ParameterError(str(error)) from None
    parameters = InterventionParameters(
        control_rate_hz=_typed(values, "control_rate_hz", float, 50.0),
        joint_state_timeout_s=_typed(values, "joint_state_timeout_s", float, 0.1),
        arbiter=arbiter,
        policy_timeout_s=_typed(values, "policy_timeout_s", float, 0.1),
        teleop_source=_typed(values, "teleop_source", str, SOURCE_LEADER),
        robot_id=_typed(values, "robot_id", str, "robot-0"),
        task=_typed(values, "task", str, "transfer_cube"),
        instruction=_typed(values, "instruction", str, ""),
        auto_start_episodes=_typed(values, "auto_start_episodes", bool, True),
        auto_label=_typed(values, "auto_label", bool, False),
        joy_button_count=_typed(values, "joy_button_count", int, 11),
        buttons=buttons,
    )
    if values:
        raise ParameterError(f"unknown intervention_node parameters: {sorted(values)}")
    if parameters.control_rate_hz <= 0:
        raise ParameterError(f"control_rate_hz must be positive, got {parameters.control_rate_hz}")
    return parameters


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

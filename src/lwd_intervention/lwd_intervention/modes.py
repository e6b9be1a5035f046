"""Control modes and command sources of the arbiter.

The mode values equal ``lwd_msgs/msg/InterventionState`` ``MODE_*`` so a mode can be
written into the message as is; the source strings are what ``InterventionState.source``
carries for each executed step.
"""

from __future__ import annotations

from enum import IntEnum


class Mode(IntEnum):
    """Who may command the robot; values match ``InterventionState.MODE_*``."""

    AUTONOMOUS = 0
    TELEOP = 1
    PAUSED = 2
    ESTOP = 3


SOURCE_POLICY = "policy"
"""The policy's command was executed (or blended towards, during a hand-back)."""

SOURCE_HOLD = "hold"
"""The last executed command was repeated: paused, e-stopped, or no valid command this step."""

SOURCE_LEADER = "teleop/leader"
SOURCE_SCRIPTED_OPERATOR = "operator/scripted"
"""Typical teleop sources; any other non-empty name (not ``policy``/``hold``) is accepted too."""

RESERVED_SOURCES = frozenset({SOURCE_POLICY, SOURCE_HOLD})

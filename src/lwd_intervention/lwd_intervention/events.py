"""Operator events: what a gamepad button, a keyboard key or a service call asks for.

Every input device maps onto this one vocabulary, so the arbiter and the episode
labeller do not care whether a request came from a joystick, a terminal or a script.
"""

from __future__ import annotations

from enum import Enum


class OperatorEvent(str, Enum):
    """A discrete request from the operator."""

    TAKEOVER = "takeover"
    HAND_BACK = "hand_back"
    PAUSE = "pause"
    ESTOP = "estop"
    RESET_ESTOP = "reset_estop"
    SUCCESS = "success"
    FAILURE = "failure"
    RERECORD = "rerecord"
    DISCARD = "discard"

    @classmethod
    def parse(cls, name: str) -> OperatorEvent:
        """The event called ``name``; raises ValueError listing the valid names otherwise."""
        try:
            return cls(name)
        except ValueError:
            valid = ", ".join(event.value for event in cls)
            raise ValueError(f"unknown operator event {name!r}; valid events: {valid}") from None


ARBITER_EVENTS = frozenset(
    {
        OperatorEvent.TAKEOVER,
        OperatorEvent.HAND_BACK,
        OperatorEvent.PAUSE,
        OperatorEvent.ESTOP,
        OperatorEvent.RESET_ESTOP,
    }
)
"""Events that change who controls the robot; the rest concern the episode and its label."""

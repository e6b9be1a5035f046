"""Gamepad (``sensor_msgs/Joy``) buttons to operator events, with edge detection.

The button map is configuration (``buttons.<event>: <index>`` parameters), so any
gamepad works. A press fires its event once, on the 0→1 edge; holding a button
does not repeat it. For a physical gamepad the first message only sets the baseline,
so a button held while the node starts does not fire, except e-stop, which fires
whenever it is down; a virtual gamepad (the keyboard console) starts all released.
An optional deadman button is read as a level, not an edge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lwd_intervention.events import OperatorEvent

UNMAPPED = -1
"""Button index meaning 'this event has no button'."""


class JoyConfigError(ValueError):
    """The button map names an unknown event, an index the device lacks, or one button twice."""


class JoyInputError(ValueError):
    """A Joy message does not match the configured device (too few buttons)."""


@dataclass(frozen=True)
class JoyUpdate:
    """What one Joy message means: the events pressed since the last message, and the deadman level."""

    events: tuple[OperatorEvent, ...]
    deadman: bool


class JoyMapper:
    """Maps Joy button arrays to operator events according to a validated button map."""

    def __init__(
        self,
        button_map: Mapping[str, int],
        button_count: int,
        deadman_button: int = UNMAPPED,
        starts_released: bool = False,
    ) -> None:
        if button_count <= 0:
            raise JoyConfigError(f"button_count must be positive, got {button_count}")
        self.button_count = button_count
        mapping: dict[OperatorEvent, int] = {}
        used: dict[int, str] = {}
        for name, index in button_map.items():
            try:
                event = OperatorEvent.parse(name)
            except ValueError as error:
                raise JoyConfigError(f"joy button map: {error}") from None
            index = self._check_index(f"button for {name!r}", index, used, name)
            if index != UNMAPPED:
                mapping[event] = index
        self.deadman_button = self._check_index("deadman button", deadman_button, used, "deadman")
        self.mapping = mapping
        self._previous: list[int] | None = [0] * button_count if starts_released else None

    def _check_index(self, what: str, index: int, used: dict[int, str], name: str) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            raise JoyConfigError(f"joy button map: {what} must be an integer index, got {index!r}")
        if index == UNMAPPED:
            return index
        if not 0 <= index < self.button_count:
            raise JoyConfigError(
                f"joy button map: {what} is {index}, but the device has buttons 0..{self.button_count - 1} "
                f"(use {UNMAPPED} to leave it unmapped)"
            )
        if index in used:
            raise JoyConfigError(f"joy button map: button {index} is mapped to both {used[index]!r} and {name!r}")
        used[index] = name
        return index

    def update(self, buttons: Sequence[int]) -> JoyUpdate:
        """Events for this message's button states; raises JoyInputError (state unchanged) on a short array."""
        states = [1 if int(value) else 0 for value in buttons]
        if len(states) < self.button_count:
            raise JoyInputError(
                f"Joy message has {len(states)} buttons, the configured device has {self.button_count}: ignored"
            )
        previous = self._previous
        self._previous = states
        events: list[OperatorEvent] = []
        for event, index in self.mapping.items():
            pressed = states[index] == 1
            if previous is None:
                if pressed and event is OperatorEvent.ESTOP:
                    events.append(event)
            elif pressed and previous[index] == 0:
                events.append(event)
        deadman = self.deadman_button != UNMAPPED and states[self.deadman_button] == 1
        return JoyUpdate(events=tuple(events), deadman=deadman)

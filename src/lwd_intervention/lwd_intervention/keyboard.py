"""The keyboard console's logic: keys to operator events, and the status screen it draws.

The desk-session UI (``keyboard_teleop``) is a thin terminal host around this core.
Key presses become operator events; the console sends them as a virtual gamepad
(``sensor_msgs/Joy``) whose fixed layout is :data:`KEYBOARD_BUTTON_MAP`, so the
intervention node treats keyboard and gamepad the same way. The screen shows the
mode, the controlling source, the episode id and the episode timer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lwd_intervention.arbiter import NS_PER_S
from lwd_intervention.events import OperatorEvent
from lwd_intervention.labels import EpisodeEventKind
from lwd_intervention.modes import Mode

KEYBOARD_JOY_TOPIC = "/teleop/keyboard"
"""sensor_msgs/msg/Joy: the keyboard console's virtual gamepad (internal to lwd_intervention)."""

KEYBOARD_BUTTON_MAP: dict[str, int] = {event.value: index for index, event in enumerate(OperatorEvent)}
"""Button index of every operator event on the keyboard's virtual gamepad."""

DEFAULT_KEYS: dict[str, OperatorEvent] = {
    "t": OperatorEvent.TAKEOVER,
    "h": OperatorEvent.HAND_BACK,
    "p": OperatorEvent.PAUSE,
    " ": OperatorEvent.ESTOP,
    "r": OperatorEvent.RESET_ESTOP,
    "s": OperatorEvent.SUCCESS,
    "f": OperatorEvent.FAILURE,
    "a": OperatorEvent.RERECORD,
    "d": OperatorEvent.DISCARD,
}
"""Default key bindings; space is e-stop so the largest key stops the robot."""

QUIT_KEY = "q"


def _key_label(key: str) -> str:
    return "space" if key == " " else key


@dataclass(frozen=True)
class ConsoleStatus:
    """What the console last heard from the intervention node."""

    mode: Mode | None = None
    source: str = ""
    episode_id: str = ""
    episode_start_ns: int | None = None
    last_event: str = ""


class KeyboardConsole:
    """Key handling and screen rendering of the desk console, with no terminal I/O."""

    def __init__(self, keys: Mapping[str, OperatorEvent] | None = None) -> None:
        bindings = dict(DEFAULT_KEYS if keys is None else keys)
        for key in bindings:
            if len(key) != 1:
                raise ValueError(f"key bindings must be single characters, got {key!r}")
            if key.lower() == QUIT_KEY:
                raise ValueError(f"{QUIT_KEY!r} is reserved for quitting the console")
        self.keys = {key.lower(): event for key, event in bindings.items()}
        self.status = ConsoleStatus()

    def event_for_key(self, key: str) -> OperatorEvent | None:
        """The event bound to ``key`` (case-insensitive), or None for an unbound key."""
        return self.keys.get(key.lower())

    @staticmethod
    def buttons_for(event: OperatorEvent) -> list[int]:
        """The virtual gamepad's button array with only ``event``'s button pressed."""
        buttons = [0] * len(KEYBOARD_BUTTON_MAP)
        buttons[KEYBOARD_BUTTON_MAP[event.value]] = 1
        return buttons

    def on_state(self, mode: Mode, source: str) -> None:
        """Record the arbiter's latest mode and source."""
        self.status = ConsoleStatus(
            mode=mode,
            source=source,
            episode_id=self.status.episode_id,
            episode_start_ns=self.status.episode_start_ns,
            last_event=self.status.last_event,
        )

    def on_episode_event(self, kind: EpisodeEventKind, episode_id: str, stamp_ns: int) -> None:
        """Record an episode start/end/discard/rerecord; the timer restarts on start and rerecord."""
        running = kind in (EpisodeEventKind.START, EpisodeEventKind.RERECORD)
        self.status = ConsoleStatus(
            mode=self.status.mode,
            source=self.status.source,
            episode_id=episode_id if running else "",
            episode_start_ns=stamp_ns if running else None,
            last_event=f"{kind.name.lower()} {episode_id}",
        )

    def render(self, now_ns: int) -> list[str]:
        """The screen lines for time ``now_ns``."""
        status = self.status
        mode = status.mode.name if status.mode is not None else "unknown (no state received)"
        if status.episode_start_ns is None:
            episode, timer = "none", "--:--.-"
        else:
            elapsed = max(0, now_ns - status.episode_start_ns) / NS_PER_S
            minutes, seconds = divmod(elapsed, 60.0)
            episode, timer = status.episode_id, f"{int(minutes):02d}:{seconds:04.1f}"
        bindings = "  ".join(f"[{_key_label(key)}] {event.value}" for key, event in self.keys.items())
        return [
            "LWD intervention console",
            f"mode:    {mode}" + (f" ({status.source})" if status.source else ""),
            f"episode: {episode}",
            f"timer:   {timer}",
            f"last:    {status.last_event or '-'}",
            "",
            bindings + f"  [{QUIT_KEY}] quit",
        ]

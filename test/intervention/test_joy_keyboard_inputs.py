"""Gamepad button mapping (edge detection, config errors) and the keyboard console core."""

from __future__ import annotations

import pytest
from lwd_intervention.events import OperatorEvent
from lwd_intervention.joy import JoyConfigError, JoyInputError, JoyMapper
from lwd_intervention.keyboard import KEYBOARD_BUTTON_MAP, KeyboardConsole
from lwd_intervention.labels import EpisodeEventKind
from lwd_intervention.modes import Mode

BUTTONS = {"takeover": 0, "hand_back": 1, "success": 2, "failure": 3, "rerecord": 4, "discard": 5, "estop": 6}


def _press(count: int, *indices: int) -> list[int]:
    return [1 if i in indices else 0 for i in range(count)]


def test_a_press_fires_once_on_the_rising_edge() -> None:
    mapper = JoyMapper(BUTTONS, button_count=8, deadman_button=7)
    assert mapper.update(_press(8)).events == ()
    update = mapper.update(_press(8, 0, 7))
    assert update.events == (OperatorEvent.TAKEOVER,) and update.deadman
    assert mapper.update(_press(8, 0, 7)).events == ()
    assert mapper.update(_press(8)).events == ()
    assert mapper.update(_press(8, 0, 2)).events == (OperatorEvent.TAKEOVER, OperatorEvent.SUCCESS)


def test_first_message_is_a_baseline_except_for_estop() -> None:
    mapper = JoyMapper(BUTTONS, button_count=8)
    assert mapper.update(_press(8, 0, 6)).events == (OperatorEvent.ESTOP,)
    assert not mapper.update(_press(8, 0, 6)).deadman


@pytest.mark.parametrize(
    ("button_map", "match"),
    [
        ({"takeover": 12}, "device has buttons 0..7"),
        ({"takeover": -3}, "device has buttons 0..7"),
        ({"launch_rocket": 1}, "unknown operator event 'launch_rocket'"),
        ({"takeover": 1, "hand_back": 1}, "mapped to both"),
        ({"takeover": "1"}, "must be an integer"),
    ],
)
def test_bad_button_maps_are_clear_config_errors(button_map: dict, match: str) -> None:
    with pytest.raises(JoyConfigError, match=match):
        JoyMapper(button_map, button_count=8)


def test_unmapped_buttons_and_short_messages() -> None:
    mapper = JoyMapper({"takeover": 0, "discard": -1}, button_count=4)
    assert OperatorEvent.DISCARD not in mapper.mapping
    mapper.update([0, 0, 0, 0])
    with pytest.raises(JoyInputError, match="has 2 buttons"):
        mapper.update([1, 0])
    assert mapper.update([1, 0, 0, 0]).events == (OperatorEvent.TAKEOVER,)


def test_keyboard_keys_map_to_events_and_virtual_buttons_round_trip() -> None:
    console = KeyboardConsole()
    assert console.event_for_key("T") is OperatorEvent.TAKEOVER
    assert console.event_for_key(" ") is OperatorEvent.ESTOP
    assert console.event_for_key("z") is None
    mapper = JoyMapper(KEYBOARD_BUTTON_MAP, button_count=len(KEYBOARD_BUTTON_MAP), starts_released=True)
    for event in OperatorEvent:
        assert mapper.update(console.buttons_for(event)).events == (event,)
        mapper.update([0] * len(KEYBOARD_BUTTON_MAP))


def test_keyboard_screen_shows_mode_episode_and_timer() -> None:
    console = KeyboardConsole()
    assert "unknown" in console.render(0)[1]
    console.on_episode_event(EpisodeEventKind.START, "ep-7", 1_000_000_000)
    console.on_state(Mode.TELEOP, "teleop/leader")
    screen = "\n".join(console.render(1_000_000_000 + 75_500_000_000))
    assert "mode:    TELEOP (teleop/leader)" in screen
    assert "episode: ep-7" in screen
    assert "timer:   01:15.5" in screen
    console.on_episode_event(EpisodeEventKind.END, "ep-7", 2_000_000_000)
    screen = "\n".join(console.render(3_000_000_000))
    assert "episode: none" in screen and "end ep-7" in screen


def test_keyboard_rejects_bad_bindings() -> None:
    with pytest.raises(ValueError, match="reserved"):
        KeyboardConsole({"q": OperatorEvent.ESTOP})
    with pytest.raises(ValueError, match="single characters"):
        KeyboardConsole({"ctrl-c": OperatorEvent.ESTOP})

"""The shipped intervention_node.yaml builds the cores, and bad files fail clearly naming the key."""

from __future__ import annotations

import argparse
import os
import termios
from pathlib import Path

import pytest
import yaml
from lwd.commands import intervention as intervention_command
from lwd_intervention.events import OperatorEvent
from lwd_intervention.joy import JoyConfigError
from lwd_intervention.parameters import (
    ParameterError,
    load_parameters,
    parameters_from_mapping,
)
from lwd_intervention.terminal import RawTerminal


def lwd_main(argv: list[str]) -> int:
    """Run ``lwd <argv>`` with only the intervention command group registered (other groups load torch)."""
    parser = argparse.ArgumentParser(prog="lwd")
    intervention_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "intervention_node.yaml"


def test_shipped_config_builds_a_session_and_a_gamepad_mapper() -> None:
    parameters = load_parameters(CONFIG)
    mapper = parameters.joy_mapper()
    assert mapper.mapping[OperatorEvent.TAKEOVER] == 4 and mapper.mapping[OperatorEvent.ESTOP] == 8
    assert set(mapper.mapping) == set(OperatorEvent)
    session = parameters.session()
    assert session.teleop_source == "teleop/leader" and not session.labeler.auto_label


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"blend_steps": "ten"}, ParameterError, "'blend_steps' must be int"),
        ({"max_step_delta": -1.0}, ParameterError, r"'max_step_delta' must be in \[0.0001, 1.0\]"),
        ({"frobnicate": 1}, ParameterError, "unknown intervention_node parameters"),
        ({"buttons": {"takeover": 1.5}}, ParameterError, "'buttons.takeover' must be int"),
        ({"control_rate_hz": 0}, ParameterError, r"'control_rate_hz' must be in \[1.0, 1000.0\]"),
    ],
)
def test_bad_parameters_are_rejected_with_the_key(change: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        parameters_from_mapping(change)


def test_unknown_button_index_is_a_config_error_and_the_cli_reports_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    document = yaml.safe_load(CONFIG.read_text())
    document["intervention_node"]["ros__parameters"]["buttons"]["estop"] = 15
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    with pytest.raises(JoyConfigError, match=r"device has buttons 0\.\.10"):
        load_parameters(bad).joy_mapper()
    assert lwd_main(["intervention", "check-config", str(bad)]) == 2
    assert "device has buttons 0..10" in capsys.readouterr().out
    assert lwd_main(["intervention", "check-config", str(CONFIG)]) == 0
    assert "takeover=4" in capsys.readouterr().out


def test_missing_section_is_a_parameter_error(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("policy_node:\n  ros__parameters: {}\n")
    with pytest.raises(ParameterError, match="no 'intervention_node: ros__parameters:' section"):
        load_parameters(path)


def test_raw_terminal_reads_single_keys_and_restores_the_mode(tmp_path: Path) -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "r", closefd=False) as stream, open(tmp_path / "screen.txt", "w") as screen:
        before = termios.tcgetattr(follower)
        with RawTerminal(stream, screen) as terminal:
            assert terminal.read_key(0.0) is None
            os.write(leader, b"t")
            assert terminal.read_key(1.0) == "t"
            terminal.draw(["mode: TELEOP"])
        assert termios.tcgetattr(follower) == before
    os.close(leader)
    os.close(follower)
    assert "mode: TELEOP" in (tmp_path / "screen.txt").read_text()

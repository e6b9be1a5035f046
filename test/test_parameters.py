"""Node parameters declared once: the tables check values, and the config files and reference page agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from lwd.parameter_reference import NODE_TABLES, render
from lwd_interfaces.parameters import Parameter, ParameterError, ParameterTable, flatten
from lwd_interfaces.robots import ROBOTS

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("table", NODE_TABLES, ids=lambda table: table.node)
def test_each_shipped_config_lists_exactly_the_table_with_its_defaults(table: ParameterTable):
    document = yaml.safe_load((REPO / "config" / f"{table.node}.yaml").read_text())
    assert flatten(document[table.node]["ros__parameters"]) == table.defaults()


@pytest.mark.parametrize("profile", sorted(ROBOTS))
def test_each_robot_profile_names_its_own_description_and_records_its_cameras(profile: str):
    document = yaml.safe_load((REPO / "config" / "profiles" / f"{profile}.yaml").read_text())
    assert document["policy_node"]["ros__parameters"]["robot"] == profile
    assert document["intervention_node"]["ros__parameters"]["robot"] == profile
    assert tuple(document["recorder_node"]["ros__parameters"]["cameras"]) == ROBOTS[profile].cameras


def test_the_parameter_reference_page_is_rendered_from_the_tables():
    assert (REPO / "docs" / "parameters.md").read_text() == render(), "run: python -m lwd.parameter_reference"


def test_a_table_checks_types_ranges_choices_and_names():
    table = ParameterTable(
        "demo_node",
        [
            Parameter("rate_hz", 50.0, "rate [Hz]", 1.0, 100.0),
            Parameter("mode", "fast", "mode", choices=("fast", "slow")),
            Parameter("cameras", ["top"], "cameras"),
            Parameter("buttons.go", 1, "button", -1, 10),
        ],
    )
    assert table.read({"rate_hz": 20, "buttons": {"go": 3}}) == {
        "rate_hz": 20.0,
        "mode": "fast",
        "cameras": ["top"],
        "buttons.go": 3,
    }
    for values, match in [
        ({"rate_hz": 0.5}, r"'rate_hz' must be in \[1.0, 100.0\]"),
        ({"rate_hz": "50"}, "'rate_hz' must be float"),
        ({"mode": "warp"}, r"'mode' must be one of \['fast', 'slow'\]"),
        ({"cameras": "top"}, "'cameras' must be list"),
        ({"cameras": [1]}, "'cameras' must list strs"),
        ({"buttons": {"go": True}}, "'buttons.go' must be int"),
        ({"speed": 1}, r"unknown demo_node parameters: \['speed'\]"),
    ]:
        with pytest.raises(ParameterError, match=match):
            table.read(values)


def test_a_table_refuses_a_default_outside_its_own_range_or_a_duplicate_name():
    with pytest.raises(ParameterError, match="must be in"):
        Parameter("rate_hz", 500.0, "rate", 1.0, 100.0)
    with pytest.raises(ValueError, match="both bounds"):
        Parameter("rate_hz", 5.0, "rate", low=1.0)
    with pytest.raises(ValueError, match="declared twice"):
        ParameterTable("demo_node", [Parameter("a", 1, "a", 0, 2), Parameter("a", 1, "a", 0, 2)])

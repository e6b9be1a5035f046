"""``lwd intervention``: check an intervention_node parameter file and show what it configures."""

from __future__ import annotations

import argparse
from pathlib import Path

from lwd_intervention.joy import JoyConfigError
from lwd_intervention.parameters import ParameterError, load_parameters

from lwd.arguments import add_path

DEFAULT_CONFIG = Path("config/intervention_node.yaml")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``intervention`` command group."""
    parser = subparsers.add_parser("intervention", help="takeover arbiter and operator-input tools")
    commands = parser.add_subparsers(dest="intervention_command", required=True, metavar="SUBCOMMAND")
    check = commands.add_parser("check-config", help="validate an intervention_node parameter file")
    add_path(check, "config", must_be="file", nargs="?", default=DEFAULT_CONFIG, help="ROS 2 parameter YAML")
    check.set_defaults(handler=run_check_config)


def run_check_config(args: argparse.Namespace) -> int:
    """Print the arbiter limits and the gamepad button map; exit 2 with the reason when invalid."""
    try:
        parameters = load_parameters(args.config)
        mapper = parameters.joy_mapper()
    except (ParameterError, JoyConfigError) as error:
        print(f"invalid {args.config}: {error}")
        return 2
    arbiter = parameters.arbiter
    print(f"{args.config}: valid")
    print(f"  control rate       {parameters.control_rate_hz:g} Hz, {arbiter.dof} joints")
    print(f"  max step delta     {arbiter.max_step_delta:g} per step")
    blend = f"else blend {arbiter.blend_steps} steps"
    print(f"  takeover           agreement within {arbiter.agreement_tolerance:g}, {blend}")
    print(f"  teleop watchdog    {arbiter.teleop_timeout_s:g} s, deadman required: {arbiter.require_deadman}")
    print(f"  teleop source      {parameters.teleop_source}; auto-label: {parameters.auto_label}")
    pairs = sorted(mapper.mapping.items(), key=lambda item: item[1])
    buttons = ", ".join(f"{event.value}={index}" for event, index in pairs)
    deadman = f", deadman={mapper.deadman_button}" if mapper.deadman_button >= 0 else ""
    print(f"  gamepad buttons    {buttons}{deadman}")
    return 0

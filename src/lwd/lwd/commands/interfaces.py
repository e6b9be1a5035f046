"""``lwd interfaces``: list the lwd_msgs types known off ROS, with their fields."""

from __future__ import annotations

import argparse

from lwd_interfaces import lwd_type_names, lwd_typestore


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``interfaces`` command."""
    parser = subparsers.add_parser("interfaces", help="list lwd_msgs message and service types")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print every lwd_msgs type and its field names."""
    typestore = lwd_typestore()
    for name in lwd_type_names():
        fields = typestore.fielddefs[name][1]
        print(f"{name}: {', '.join(field[0] for field in fields)}")
    return 0

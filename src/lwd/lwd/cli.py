"""The ``lwd`` command: the off-ROS runner and operator tools.

Each command group lives in its own module under ``lwd.commands`` and adds
itself to the parser through ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_MODULES = [
    "lwd.commands.interfaces",
    "lwd.commands.demo",
    "lwd.commands.bag",
    "lwd.commands.store",
    "lwd.commands.train",
    "lwd.commands.intervention",
    "lwd.commands.policy",
    "lwd.commands.sim",
]


def build_parser() -> argparse.ArgumentParser:
    """The full ``lwd`` argument parser, with every command group registered."""
    parser = argparse.ArgumentParser(prog="lwd", description="Learning while deploying: robot fleet runner and tools.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lwd`` console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

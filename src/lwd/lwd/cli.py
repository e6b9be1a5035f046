"""The ``lwd`` command: the off-ROS runner and operator tools.

Each command group lives in its own module under ``lwd.commands`` and adds
itself to the parser through ``register(subparsers)``; argument values are
checked at parse time by the types of ``lwd.arguments``.

A user's mistake ends a command with one line on stderr and exit code 2, never
a traceback: a bad argument (argparse, through ``LwdArgumentParser.error``) and,
while the command runs, an error of the kinds in ``USER_ERRORS`` (a store that
does not exist or cannot be reached, an unreadable bag, a bad checkpoint or
manifest, a missing file). Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import NoReturn

from lwd.arguments import check_paths

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

USER_ERRORS = (
    ("lwd.arguments", "CommandError"),
    ("lwd_fleet.errors", "FleetError"),
    ("lwd_logger.errors", "BagError"),
    ("lwd_interfaces.manifest", "ManifestError"),
    ("lwd_interfaces.camera_projection", "CalibrationError"),
    ("lwd_policy.checkpoint", "CheckpointError"),
    ("lwd_policy.contract", "ConfigError"),
)
"""(module, exception class) of errors caused by what the user pointed a command at.

Looked up only in modules already imported: an exception cannot come from a module that was never
loaded, and ``lwd bag info`` need not import torch to recognise a checkpoint error.
"""

FILE_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, FileExistsError)
"""OS errors about a path the user named."""

LOGGER = logging.getLogger("lwd")


class LwdArgumentParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (with a pointer to ``--help``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` and exit 2 (argparse would print the whole usage first)."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full ``lwd`` argument parser, with every command group registered."""
    parser = LwdArgumentParser(prog="lwd", description="Learning while deploying: robot fleet runner and tools.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (and tracebacks of user errors)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def _user_error_types() -> tuple[type[BaseException], ...]:
    """The exception classes of ``USER_ERRORS`` whose modules are loaded, plus ``FILE_ERRORS``."""
    loaded = [getattr(sys.modules[module], name) for module, name in USER_ERRORS if module in sys.modules]
    return (*loaded, *FILE_ERRORS)


def _command_name(args: argparse.Namespace) -> str:
    """``lwd train bc``: the command words the user typed, for the error line."""
    words = ["lwd", args.command, getattr(args, f"{args.command}_command", None)]
    return " ".join(word for word in words if word)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lwd`` console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        check_paths(args)
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if not isinstance(error, _user_error_types()):
            raise
        LOGGER.debug("%s failed", _command_name(args), exc_info=True)
        print(f"{_command_name(args)}: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

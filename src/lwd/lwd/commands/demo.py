"""``lwd demo``: the simulated fleet learning while deploying, end to end, with a report."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from lwd_experiment.demo_loop import DemoError, DemoLoop
from lwd_experiment.presets import INPUTS, PRESETS, preset

from lwd.arguments import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser("demo", help="run the simulated fleet learning loop and write a report")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default", help="run size (quick: CI)")
    parser.add_argument("--work-dir", type=Path, default=None, help="new folder for this run (default runs/<time>)")
    parser.add_argument("--robots", type=positive_int, default=None, help="override the preset's number of robots")
    parser.add_argument("--rounds", type=positive_int, default=None, help="override the preset's number of rounds")
    parser.add_argument("--inputs", choices=INPUTS, default=None, help="override what the policy reads")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit code 1 with the failing stage named when it cannot finish."""
    given = (("robots", args.robots), ("rounds", args.rounds), ("inputs", args.inputs))
    overrides = {key: value for key, value in given if value is not None}
    chosen = preset(args.preset, **overrides)
    work_dir = args.work_dir or Path("runs") / f"demo-{chosen.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    logging.getLogger().setLevel(logging.WARNING)
    try:
        summary = DemoLoop(chosen, work_dir).run()
    except DemoError as error:
        print(f"lwd demo failed: {error}")
        return 1
    print(f"\nreport: {summary}")
    print(summary.read_text())
    return 0

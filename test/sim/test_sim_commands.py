"""``lwd sim`` command group: parses, runs a one-robot fleet, reports the success rate."""

from __future__ import annotations

import argparse

import pytest
from lwd.commands import sim as cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lwd")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_sim_demo_runs_and_reports(capsys):
    args = _parser().parse_args(["sim", "demo", "--task", "insertion", "--episodes", "1", "--robots", "1"])
    assert args.handler(args) == 0
    output = capsys.readouterr().out
    assert "sim-00: 1/1 successful" in output and "success rate: 100.0% over 1 episodes" in output


def test_sim_rejects_unknown_task():
    with pytest.raises(SystemExit):
        _parser().parse_args(["sim", "demo", "--task", "stack_blocks"])

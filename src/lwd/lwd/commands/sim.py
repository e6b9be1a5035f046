"""``lwd sim``: run scripted demonstrations or takeover trials on the simulated fleet.

    lwd sim demo --task insertion --episodes 20 --robots 2 [--imperfect]
    lwd sim takeover --kind noisy_operator --episodes 20 --robots 2

Each robot is its own process (``lwd_sim.process_fleet``) with its own seed stream; the command prints
one line per robot and the overall success rate, and exits non-zero if a robot process failed.
"""

from __future__ import annotations

import argparse
import functools

from lwd_sim.operator_trials import POOR_POLICIES, demonstration_worker, takeover_worker
from lwd_sim.process_fleet import run_fleet
from lwd_sim.tasks import TASKS

from lwd.arguments import non_negative_int, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sim`` command group."""
    parser = subparsers.add_parser("sim", help="simulated ALOHA fleet: scripted demonstrations and takeovers")
    commands = parser.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    demo = commands.add_parser("demo", help="scripted demonstrations, success rate per robot")
    demo.add_argument("--task", choices=sorted(TASKS), default="transfer_cube")
    demo.add_argument("--imperfect", action="store_true", help="human-like delay, noise and mistakes")
    takeover = commands.add_parser("takeover", help="operator takeovers after a poor policy (transfer_cube)")
    takeover.add_argument("--kind", choices=POOR_POLICIES, default="random_walk")
    for sub in (demo, takeover):
        sub.add_argument("--episodes", type=positive_int, default=10, help="episodes per robot")
        sub.add_argument("--robots", type=positive_int, default=2, help="robot processes")
        sub.add_argument("--seed", type=non_negative_int, default=0, help="fleet seed (each robot gets its own stream)")
    demo.set_defaults(handler=run_demo)
    takeover.set_defaults(handler=run_takeover)


def run_demo(args: argparse.Namespace) -> int:
    """Scripted demonstrations on every robot."""
    worker = functools.partial(demonstration_worker, task=args.task, episodes=args.episodes, imperfect=args.imperfect)
    return _report(run_fleet(worker, args.robots, seed=args.seed))


def run_takeover(args: argparse.Namespace) -> int:
    """Takeover trials on every robot."""
    worker = functools.partial(takeover_worker, episodes=args.episodes, kind=args.kind)
    return _report(run_fleet(worker, args.robots, seed=args.seed))


def _report(results: list) -> int:
    successes = total = 0
    for result in results:
        if not result.ok:
            print(f"{result.robot_id}: FAILED: {result.error}")
            continue
        wins = sum(outcome.success for outcome in result.value)
        successes += wins
        total += len(result.value)
        print(f"{result.robot_id}: {wins}/{len(result.value)} successful")
    if total:
        print(f"success rate: {100.0 * successes / total:.1f}% over {total} episodes")
    return 0 if all(result.ok for result in results) else 1

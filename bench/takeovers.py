"""What the scripted operator's takeovers do to a published policy: success alone vs with the operator.

A robot runs the policy a fleet store's channel serves on the same validation seeds twice (this study
chooses the operator's settings, so it never sees the test seeds; ``lwd_experiment.seed_splits``):
alone (evaluation) and with the human-like scripted operator taking over on its triggers (deployment,
not recorded).
Prints each seed's outcomes and takeover reasons, then the totals. An operator whose takeovers
lower success is feeding the learner bad intervention data; ``--drop-seconds 0`` restores the
one-step drop trigger that did so on insertion (BENCHMARKS.md).

    .venv/bin/python bench/takeovers.py --store runs/learning/run-0/lwd/fleet --task insertion --episodes 12
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

from lwd_experiment.presets import PRESETS
from lwd_experiment.seed_splits import split_seeds
from lwd_experiment.sim_robot import RobotError, RobotSettings, SimRobot
from lwd_interfaces.success_rate import wilson_rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="fleet store folder with a published policy")
    parser.add_argument("--task", choices=PRESETS["default"].tasks, default="insertion")
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--skip", type=int, default=0, help="start after this many validation seeds")
    parser.add_argument("--drop-seconds", type=float, default=RobotSettings.drop_seconds)
    parser.add_argument(
        "--trusted-key", type=Path, help="release public key (default: the demo's, <store>/../keys/release.pub)"
    )
    args = parser.parse_args()
    if not (args.store / "policies").is_dir():
        parser.error(f"{args.store} holds no published policies")
    alone, assisted, reasons = [], [], Counter()
    with tempfile.TemporaryDirectory() as scratch:
        trusted = args.trusted_key or args.store.resolve().parent / "keys" / "release.pub"
        settings = RobotSettings("takeovers", f"file://{args.store.resolve()}", Path(scratch), record=False,
                                 drop_seconds=args.drop_seconds, trusted_keys=(str(trusted),))  # fmt: skip
        robot = SimRobot(settings)
        try:
            print(f"policy {robot.refresh_policy()}, task {args.task}, drop_seconds {args.drop_seconds}")
            print("| seed | alone | with operator | takeovers |\n|---|---|---|---|")
            for seed in split_seeds("validation", args.episodes, offset=args.skip):
                alone.append(robot.run_episode(args.task, seed, "evaluation").success)
                deployed = robot.run_episode(args.task, seed, "deployment")
                assisted.append(deployed.success)
                reasons.update(deployed.takeover_reasons)
                print(f"| {seed} | {alone[-1]} | {assisted[-1]} | {', '.join(deployed.takeover_reasons) or '-'} |")
        except RobotError as error:
            print(f"takeovers: {error}", file=sys.stderr)
            return 1
        finally:
            robot.close()
    print(f"\nalone {wilson_rate(sum(alone), len(alone))}; with operator {wilson_rate(sum(assisted), len(assisted))}")
    print("takeover reasons: " + (", ".join(f"{reason} {count}" for reason, count in reasons.most_common()) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

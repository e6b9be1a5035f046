"""Seed-by-seed comparison of the policies several work folders serve, on the same validation seeds.

Each folder is a demo, arm (`bench/learning.py`) or variant (`bench/offline_learner.py`) folder
with a fleet store; the policy its channel serves now is evaluated on validation seeds
(`lwd_experiment.seed_splits`) with no operator. Prints each policy's success, then the first folder
against each other one: the seeds only one of them solved and the exact McNemar p-value. Evaluation
is deterministic per seed. This is a study for choosing between variants, so it never sees the test
seeds; `bench/learning.py` prints the same comparison on the test seeds for the arms it reports.

    .venv/bin/python bench/paired.py --preset full --per-task 100 runs/learning/run-0/lwd runs/learning/run-0/hg-dagger
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lwd_experiment.demo_loop import DemoError, DemoLoop
from lwd_experiment.presets import PRESETS, preset
from lwd_experiment.report import paired_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="work folders; the first is compared with the rest")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default", help="robots and tasks")
    parser.add_argument("--per-task", type=int, default=100, help="validation seeds per task")
    args = parser.parse_args()
    if len(args.folders) < 2:
        parser.error("give at least two folders to compare")
    for folder in args.folders:
        if not (folder / "fleet" / "policies").is_dir():
            parser.error(f"{folder} holds no fleet store with published policies")
        if not (folder / "keys").is_dir():
            parser.error(f"{folder} holds no release keys (keys/): its robots could trust no policy")
    chosen = preset(args.preset)
    finals = {}
    try:
        for folder in args.folders:
            finals[folder.name] = [DemoLoop(chosen, folder).evaluate(args.per_task, "validation")]
    except DemoError as error:
        print(f"paired: {error}", file=sys.stderr)
        return 1
    print(f"| folder | policy | {' | '.join(chosen.tasks)} | average |")
    print("|---|---|" + "---|" * len(chosen.tasks) + "---|")
    for name, (result,) in finals.items():
        rates = " | ".join(str(result.eval_rate_for(task)) for task in chosen.tasks)
        print(f"| {name} | {result.policy_version} | {rates} | {result.eval_rate} |")
    print()
    print("\n".join(paired_table(finals, chosen.tasks)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

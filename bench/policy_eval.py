"""Validation success of one policy checkpoint, with no operator, for several chunk-execution settings.

The policy is published on a scratch store and run by the simulated fleet in evaluation mode on the
first validation seeds of each task (``lwd_experiment.seed_splits``: this study chooses a setting, so
it never sees the test seeds). ``--low-water`` values compare how often the runtime re-plans: 1
executes each chunk almost open-loop, H-1 re-plans every step. ``--instructions held_out`` gives
each episode a paraphrase no demonstration or fleet episode was recorded with.

    .venv/bin/python bench/policy_eval.py --checkpoint runs/<demo>/pretrained --low-water 1,5,19
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from lwd_experiment.seed_splits import split_seeds
from lwd_experiment.sim_robot import EpisodeJob, RobotSettings, sim_robot_fleet
from lwd_fleet.signing import generate_key_pair
from lwd_interfaces.success_rate import wilson_rate
from lwd_sim.tasks import INSTRUCTION_SETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="policy folder")
    parser.add_argument("--low-water", default="1,5", help="comma-separated runtime low-water marks")
    parser.add_argument("--episodes", type=int, default=20, help="validation seeds per task")
    parser.add_argument("--tasks", default="transfer_cube,insertion")
    parser.add_argument("--instructions", choices=INSTRUCTION_SETS, default="trained", help="paraphrase set")
    args = parser.parse_args()
    tasks = tuple(args.tasks.split(","))
    seeds = split_seeds("validation", args.episodes)
    print("| low water | " + " | ".join(tasks) + " | max stage reached (per episode) |")
    print("|---|" + "---|" * len(tasks) + "---|")
    with tempfile.TemporaryDirectory() as scratch:
        store = f"file://{Path(scratch) / 'fleet'}"
        private, public, _ = generate_key_pair(Path(scratch) / "keys")
        subprocess.run(
            [sys.executable, "-m", "lwd.cli", "train", "publish", "--store", store, "--checkpoint", args.checkpoint,
             "--signing-key", str(private)],
            check=True,
            capture_output=True,
        )  # fmt: skip
        for low_water in (int(value) for value in args.low_water.split(",")):
            settings = [
                RobotSettings(
                    f"eval_{i}",
                    store,
                    Path(scratch) / f"lw{low_water}_{i}",
                    trusted_keys=(str(public),),
                    tasks=tasks,
                    low_water=low_water,
                )
                for i in range(2)
            ]
            fleet = sim_robot_fleet(settings)
            try:
                jobs = [
                    EpisodeJob(t, seed, "evaluation", instructions=args.instructions) for t in tasks for seed in seeds
                ]
                done, failures = fleet.run(jobs)
            finally:
                fleet.close()
            if failures:
                raise SystemExit(f"{len(failures)} evaluation episodes failed to run: {failures[0].error}")
            rates = [wilson_rate(sum(s.success for s in done if s.task == t), args.episodes) for t in tasks]
            stages = sorted(s.best_stage for s in done)
            print(f"| {low_water} | " + " | ".join(str(rate) for rate in rates) + f" | {stages} |")


if __name__ == "__main__":
    main()

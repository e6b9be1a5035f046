"""Does BC give the same base from two recordings of the same demonstrations?

Records the default preset's demonstrations (fewer of them) twice into new work folders, first with one robot
process, then with two, and BC-pretrains a base on each with the same seed; compares the checkpoints tensor by
tensor. The episodes are the same (each is decided by its seed), but the stores list them by robot and time, so in
different orders; robots taking jobs as they free up do the same between any two recordings. The table shows
which robot recorded what. A base that changes with the recording cannot be paired with
arms trained from another recording (`bench/learning.py` runs every arm of a run on one base for that reason).

    .venv/bin/python bench/bc_recordings.py --work-dir /tmp/bc-recordings
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from pathlib import Path

from lwd_experiment.demo_loop import DemoLoop
from lwd_experiment.presets import preset
from safetensors.numpy import load_file


def robots_by_task(work_dir: Path) -> str:
    """Episodes per (robot, task, outcome) in the store, e.g. ``sim_00 transfer_cube success 8``."""
    counts = Counter()
    for manifest in (work_dir / "fleet" / "episodes").glob("*/*/*/manifest.json"):
        facts = json.loads(manifest.read_text())["facts"]
        counts[(facts["lwd.robot_id"], facts["lwd.task"], facts["lwd.outcome"])] += 1
    return ", ".join(f"{robot} {task} {outcome} {count}" for (robot, task, outcome), count in sorted(counts.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="new folder; one subfolder per recording")
    parser.add_argument("--demos-per-task", type=int, default=8)
    parser.add_argument("--replays-per-task", type=int, default=4)
    parser.add_argument("--perception-steps", type=int, default=10)
    parser.add_argument("--bc-steps", type=int, default=30, help="flow steps after the perception steps")
    parser.add_argument("--seed", type=int, default=0, help="BC's training seed, the same for both recordings")
    args = parser.parse_args()
    if args.work_dir.exists():
        parser.error(f"{args.work_dir} exists; choose a new folder")
    small = dataclasses.replace(
        preset("default"),
        demos_per_task=args.demos_per_task,
        replays_per_task=args.replays_per_task,
        perception_steps=args.perception_steps,
        pixel_bc_steps=args.bc_steps,
    )
    weights = {}
    for name, robots in (("first", 1), ("second", 2)):
        loop = DemoLoop(dataclasses.replace(small, robots=robots), args.work_dir / name, training_seed=args.seed)
        loop.record_demonstrations()
        loop.pretrain()
        weights[name] = load_file(args.work_dir / name / "pretrained" / "model.safetensors")
    print("\n| recording | episodes by robot, task and outcome |\n|---|---|")
    for name in weights:
        print(f"| {name} | {robots_by_task(args.work_dir / name)} |")
    first, second = weights["first"], weights["second"]
    differ = sorted(name for name in first if not (first[name] == second[name]).all())
    print(f"\n{len(differ)} of {len(first)} tensors differ between the two bases (BC seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

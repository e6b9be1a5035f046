"""The headline experiment: every learner on the same fleet budget, seeds and starting policy.

One set of scripted demonstrations and one BC-pretrained policy are made first; each arm
(LWD, LWD with a scalar expectile value, HG-DAgger, frozen BC) then gets its own copy of that
store and runs the same rounds of fleet episodes (same seeds) and trainer updates. Success is
measured on held-out seeds with no interventions. Prints a table of final success and a seed-by-seed
comparison of the first arm with each other arm; the per-arm reports (plots, per-round tables) are
under the work folder.

    .venv/bin/python bench/learning.py --preset default --work-dir runs/learning

``--shared`` reuses the demonstrations and BC policy of an earlier run (its ``shared`` folder), so a
new or changed arm is compared on the same base as the arms measured before.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from lwd_experiment.demo_loop import DemoLoop
from lwd_experiment.learner_arms import LEARNER_ARMS
from lwd_experiment.presets import PRESETS, preset
from lwd_experiment.report import paired_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--arms", default="lwd,lwd-expectile,hg-dagger,frozen-bc", help="comma-separated arms")
    parser.add_argument("--work-dir", type=Path, required=True, help="new folder for the experiment")
    parser.add_argument("--rounds", type=int, default=None, help="override the preset's rounds")
    parser.add_argument("--shared", type=Path, help="an earlier run's shared folder: reuse its demos and BC policy")
    args = parser.parse_args()
    arms = [name.strip() for name in args.arms.split(",") if name.strip()]
    unknown = sorted(set(arms) - set(LEARNER_ARMS))
    if unknown:
        parser.error(f"unknown arms {unknown}; valid arms are {sorted(LEARNER_ARMS)}")
    chosen = preset(args.preset, **({"rounds": args.rounds} if args.rounds else {}))
    shared = args.shared or args.work_dir / "shared"
    if args.shared is None:
        DemoLoop(chosen, shared).prepare()
    elif not (shared / "fleet").is_dir() or not (shared / "pretrained").is_dir():
        parser.error(f"{shared} holds no prepared fleet store and pretrained policy")
    rows, finals = [], {}
    for name in arms:
        arm_dir = args.work_dir / name
        for part in ("fleet", "pretrained", "keys"):
            shutil.copytree(shared / part, arm_dir / part)
        loop = DemoLoop(chosen, arm_dir, arm=LEARNER_ARMS[name])
        loop.deploy()
        final = finals[name] = loop.rounds[-1]
        rows.append([name, *(str(final.eval_rate_for(task)) for task in chosen.tasks), str(final.eval_rate)])
    header = ["arm", *chosen.tasks, "average"]
    lines = [
        f"preset {chosen.name}: {chosen.robots} robots, {chosen.rounds} rounds x {chosen.episodes_per_round} fleet "
        f"episodes and {chosen.updates_per_round} updates; {chosen.final_eval_episodes_per_task} held-out seeds "
        "per task, no interventions; success with 95% Wilson intervals",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    if len(finals) > 1:
        lines += ["", "Seed by seed: held-out seeds only the first arm solved vs only the other; exact McNemar p", ""]
        lines += paired_table(finals, chosen.tasks)
    table = "\n".join(lines)
    (args.work_dir / "learning.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

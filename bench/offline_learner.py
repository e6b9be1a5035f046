"""One learner variant trained offline on an earlier arm's fleet data, then evaluated on validation seeds.

Separates what a learner does with a fixed set of episodes from the fleet's data collection: the
variant starts from the shared BC base of a `bench/learning.py` run, ingests the demonstrations and
fleet episodes one of its arms recorded, runs ``--updates`` trainer updates (``lwd train serve``) and
publishes, and the preset's robots evaluate the result on validation seeds (this study chooses a
learner's settings, so it never sees the test seeds; `lwd_experiment.seed_splits`). Episodes are
hard-linked from the source and the trainer reads the run's learner cache (``run-<i>/cache``, keyed by
content, shared with its arms), so a variant adds only its policy and trainer state, not the 4 GB of
decoded episodes a default run holds.

    .venv/bin/python bench/offline_learner.py --source runs/learning/run-0/lwd \\
        --base runs/learning/run-0/base/pretrained \\
        --work-dir runs/offline/lam01 --agent '{"lam": 0.1}' --mix demo=0.25,autonomous=0.5,intervention=0.25
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from lwd_experiment.demo_loop import CHANNEL, DemoError, DemoLoop
from lwd_experiment.learner_arms import LEARNER_ARMS
from lwd_experiment.presets import PRESETS, preset
from lwd_experiment.report import RoundResult


def link_tree(source: Path, target: Path) -> None:
    """Hard-link every file of ``source`` into ``target`` (the store and caches are written by rename only)."""
    shutil.copytree(source, target, copy_function=os.link)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="an arm folder of a bench/learning.py run")
    parser.add_argument("--base", type=Path, required=True, help="the BC policy folder to start from")
    parser.add_argument("--work-dir", type=Path, required=True, help="new folder for this variant")
    parser.add_argument("--agent", default="{}", help="AgentConfig overrides as JSON")
    parser.add_argument("--mix", default=LEARNER_ARMS["lwd"].mix, help="replay sampling mix (default: the LWD arm's)")
    parser.add_argument("--clone-mix", default="", help="the cloning batch's mix (default: none, clone from --mix's)")
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default", help="robots and tasks")
    parser.add_argument("--eval-per-task", type=int, default=40, help="validation seeds per task")
    args = parser.parse_args()
    if args.work_dir.exists():
        parser.error(f"{args.work_dir} exists; choose a new --work-dir")
    if not (args.source / "fleet" / "episodes").is_dir():
        parser.error(f"{args.source} holds no fleet store with episodes")
    started = time.monotonic()
    link_tree(args.source / "fleet" / "episodes", args.work_dir / "fleet" / "episodes")
    loop = DemoLoop(preset(args.preset), args.work_dir, cache_dir=args.source.parent / "cache")
    try:
        result, trained = train_and_evaluate(loop, args)
    except DemoError as error:
        print(f"offline_learner: {error}", file=sys.stderr)
        return 1
    tasks = " | ".join(str(result.eval_rate_for(task)) for task in loop.preset.tasks)
    print(f"| agent | mix | updates | {' | '.join(loop.preset.tasks)} | average |")
    print("|---|---|---|" + "---|" * len(loop.preset.tasks) + "---|")
    print(f"| `{args.agent}` | {args.mix} | {args.updates} | {tasks} | {result.eval_rate} |")
    evaluation = time.monotonic() - trained
    print(f"policy {result.policy_version}; training {trained - started:.0f} s, evaluation {evaluation:.0f} s")
    return 0


def train_and_evaluate(loop: DemoLoop, args: argparse.Namespace) -> tuple[RoundResult, float]:
    """Publish the base, train the variant, evaluate it; returns the result and when training ended."""
    signing = ["--signing-key", str(loop.release_key())]
    loop.run_lwd("publish", ["train", "publish", "--store", loop.store_url, "--checkpoint", str(args.base),
                             "--channel", CHANNEL, *signing])  # fmt: skip
    loop.run_lwd(
        "trainer",
        ["train", "serve", "--store", loop.store_url, "--work-dir", str(args.work_dir / "trainer"),
         "--pretrained", str(args.base.resolve()), "--channel", CHANNEL, "--max-updates", str(args.updates),
         "--publish-every", str(args.updates), "--batch-size", str(args.batch_size), "--agent", args.agent,
         "--mix", args.mix, "--cache-dir", str(loop.cache_dir), *signing,
         *(["--clone-mix", args.clone_mix] if args.clone_mix else [])],
    )  # fmt: skip
    trained = time.monotonic()
    return loop.evaluate(args.eval_per_task, "validation"), trained


if __name__ == "__main__":
    sys.exit(main())

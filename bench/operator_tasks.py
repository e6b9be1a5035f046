"""Scripted-operator quality on every simulated task: success, episode length and simulation speed.

For each task, one scripted demonstration per validation seed (``lwd_experiment.seed_splits``), with the
imperfection off and with ``Imperfection.human()``, each task's step budget being its ``TaskSpec.horizon``.
The seeds are split over two processes (so both cores work); steps/s is control steps (physics and operator,
no cameras) per second of one process. Prints one markdown table.

Usage: .venv/bin/python bench/operator_tasks.py [--episodes 100] [--tasks pick_colour tidy_cubes ...]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from lwd_experiment.seed_splits import split_seeds
from lwd_interfaces.success_rate import wilson_rate
from lwd_sim.operator import Imperfection
from lwd_sim.operator_trials import EpisodeOutcome, demonstration_episodes
from lwd_sim.tasks import TASKS

PROCESSES = 2


def timed_episodes(task: str, seeds: list[int], imperfect: bool) -> tuple[list[EpisodeOutcome], float]:
    """Demonstrations of ``task`` on ``seeds`` and the wall time they took in this process."""
    start = time.perf_counter()
    imperfection = Imperfection.human() if imperfect else Imperfection()
    outcomes = demonstration_episodes(task, seeds, imperfection, max_steps=TASKS[task].horizon)
    return outcomes, time.perf_counter() - start


def measure(
    pool: ProcessPoolExecutor, task: str, seeds: list[int], imperfect: bool
) -> tuple[list[EpisodeOutcome], float]:
    """All outcomes over ``PROCESSES`` processes, and the control steps per second of one process."""
    chunks = [seeds[index::PROCESSES] for index in range(PROCESSES)]
    results = list(pool.map(timed_episodes, [task] * PROCESSES, chunks, [imperfect] * PROCESSES))
    outcomes = [outcome for chunk, _ in results for outcome in chunk]
    busy = sum(wall for _, wall in results)
    return outcomes, sum(outcome.steps for outcome in outcomes) / busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100, help="validation seeds per task and setting")
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(TASKS), help="tasks to measure")
    args = parser.parse_args()
    seeds = list(split_seeds("validation", args.episodes))
    print(
        "| task | max stage | success, imperfection off | success, human() | mean steps off / human() "
        "| steps/s (1 core) | seeds |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    with ProcessPoolExecutor(PROCESSES) as pool:
        for task in args.tasks:
            perfect, rate = measure(pool, task, seeds, imperfect=False)
            human, _ = measure(pool, task, seeds, imperfect=True)
            off = wilson_rate(sum(o.success for o in perfect), len(perfect))
            on = wilson_rate(sum(o.success for o in human), len(human))
            steps = f"{np.mean([o.steps for o in perfect]):.0f} / {np.mean([o.steps for o in human]):.0f}"
            span = f"validation {seeds[0]}..{seeds[-1]}"
            print(f"| {task} | {TASKS[task].max_stage} | {off} | {on} | {steps} | {rate:,.0f} | {span} |", flush=True)


if __name__ == "__main__":
    main()

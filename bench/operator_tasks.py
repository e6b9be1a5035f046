"""Scripted-operator quality on every simulated task: success, episode length and simulation speed.

For each task, one scripted demonstration per validation seed (``lwd_experiment.seed_splits``), with the
imperfection off and with ``Imperfection.human()``, each task's step budget being its ``TaskSpec.horizon``.
The seeds are split over two processes (so both cores work); steps/s is control steps (physics and operator,
no cameras) per second of one process. Prints one markdown table. ``--takeovers`` prints a second one: takeover
success from a poor policy's states (``lwd_sim.operator_trials.takeover_episode``: the noisy, mistake-prone
``noisy_operator`` drives for 30-200 steps, then the scripted operator takes over and has the task's horizon).

Usage: .venv/bin/python bench/operator_tasks.py [--episodes 100] [--tasks pick_colour tidy_cubes ...] [--takeovers]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from lwd_experiment.seed_splits import split_seeds
from lwd_interfaces.success_rate import wilson_rate
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import Imperfection
from lwd_sim.operator_trials import EpisodeOutcome, demonstration_episodes, takeover_episode
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


def takeovers(task: str, seeds: list[int]) -> list[EpisodeOutcome]:
    """Takeovers on ``task`` after 30-200 steps (drawn from each seed) of the ``noisy_operator`` poor policy."""
    driver = AlohaSimDriver(task, cameras=())
    outcomes = [
        takeover_episode(
            driver, seed, "noisy_operator", int(np.random.default_rng(seed).integers(30, 200)), TASKS[task].horizon
        )
        for seed in seeds
    ]
    driver.close()
    return outcomes


def takeover_table(pool: ProcessPoolExecutor, tasks: list[str], seeds: list[int]) -> None:
    """Print takeover success and the mean stage at takeover per task."""
    print("\n| task | episodes | takeover success | stage at takeover (mean, of max) | seeds |")
    print("|---|---:|---:|---:|---|")
    for task in tasks:
        chunks = [seeds[index::PROCESSES] for index in range(PROCESSES)]
        outcomes = [outcome for chunk in pool.map(takeovers, [task] * PROCESSES, chunks) for outcome in chunk]
        rate = wilson_rate(sum(o.success for o in outcomes), len(outcomes))
        stage = f"{np.mean([o.stage_at_takeover for o in outcomes]):.2f} / {TASKS[task].max_stage}"
        print(f"| {task} | {len(outcomes)} | {rate} | {stage} | validation {seeds[0]}..{seeds[-1]} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100, help="validation seeds per task and setting")
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(TASKS), help="tasks to measure")
    parser.add_argument("--takeovers", action="store_true", help="measure takeovers from a poor policy instead")
    args = parser.parse_args()
    seeds = list(split_seeds("validation", args.episodes))
    if args.takeovers:
        with ProcessPoolExecutor(PROCESSES) as pool:
            takeover_table(pool, args.tasks, seeds)
        return
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

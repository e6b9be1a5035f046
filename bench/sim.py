"""Benchmark of lwd_sim: rendering cost, scripted-operator success, takeover success.

Prints one markdown table per measurement:
1. rendered control steps/s (default cameras) against physics-only steps/s, in one process
   (so per core), measured in interleaved blocks of the same run, reading every frame or one per policy chunk;
2. scripted demonstrations: success over N seeded episodes per task, imperfection off and on
   (two robot processes of lwd_sim.process_fleet, so both cores work);
3. takeovers: a poor policy (random joint walk, or a very noisy mistake-prone operator) drives
   transfer_cube for 30-200 steps, then the operator takes over and must finish;
4. the live loop: a policy that never moves, the operator taking over on stalls and handing
   back after each sub-goal.

Usage: .venv/bin/python bench/sim.py [--episodes 100] [--steps 300]
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np
from lwd_experiment.control_step import assisted_episode
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import ScriptedOperator
from lwd_sim.operator_trials import EpisodeOutcome, demonstration_worker, takeover_worker
from lwd_sim.process_fleet import run_fleet


def throughput(steps: int, blocks: int = 3) -> None:
    """Rendered vs physics-only control steps/s, interleaved blocks in one process.

    Images are rendered when first read, so each row reads the frames its consumer would: every one (a recorded
    episode), none (physics only), or one per chunk (an evaluation episode, whose policy plans one 20-step chunk
    every 19 steps at the simulated robots' low water 1). One row adds the stage reward, which every episode
    computes from the contacts on every step.
    """
    setups = {
        "physics only": (AlohaSimDriver("transfer_cube", cameras=[]), 0),
        "physics + stage reward every step": (AlohaSimDriver("transfer_cube", cameras=[]), 0),
        "top 96x128 (default), every frame read": (AlohaSimDriver("transfer_cube"), 1),
        "top 96x128, one frame in 19 read (evaluation)": (AlohaSimDriver("transfer_cube"), 19),
        "top+angle 96x128, every frame read": (AlohaSimDriver("transfer_cube", cameras=["top", "angle"]), 1),
        "top 480x640, every frame read": (AlohaSimDriver("transfer_cube", height=480, width=640), 1),
    }
    elapsed = dict.fromkeys(setups, 0.0)
    observations = {name: driver.reset(0) for name, (driver, _) in setups.items()}
    for _ in range(blocks):
        for name, (driver, read_every) in setups.items():
            command = driver.last_command
            observation = observations[name]
            start = time.perf_counter()
            for step in range(steps):
                if read_every and step % read_every == 0:
                    dict(observation.images)
                if "stage reward" in name:
                    driver.stage_reward  # noqa: B018 (computed for its cost)
                observation = driver.step(command)
            elapsed[name] += time.perf_counter() - start
            observations[name] = observation
    physics = blocks * steps / elapsed["physics only"]
    print("| setup | control steps/s (1 core) | ratio to physics only |")
    print("|---|---:|---:|")
    for name in setups:
        rate = blocks * steps / elapsed[name]
        print(f"| {name} | {rate:,.0f} | {rate / physics:.3f} |")
    for driver, _ in setups.values():
        driver.close()


def summarize(outcomes: list[EpisodeOutcome]) -> tuple[float, float]:
    """(success rate %, mean episode steps)."""
    return 100.0 * np.mean([o.success for o in outcomes]), float(np.mean([o.steps for o in outcomes]))


def collect(worker: functools.partial, per_robot: int) -> tuple[list[EpisodeOutcome], float]:
    start = time.perf_counter()
    results = run_fleet(worker, n_robots=2, seed=2026, processes=2)
    failed = [result for result in results if not result.ok]
    if failed:
        raise RuntimeError(f"fleet workers failed: {[(r.robot_id, r.error) for r in failed]}")
    return [outcome for result in results for outcome in result.value], time.perf_counter() - start


def demonstrations(episodes: int) -> None:
    print("| task | imperfection | episodes | success | mean steps | wall s (2 procs) |")
    print("|---|---|---:|---:|---:|---:|")
    for task in ("transfer_cube", "insertion"):
        for imperfect in (False, True):
            worker = functools.partial(demonstration_worker, task=task, episodes=episodes // 2, imperfect=imperfect)
            outcomes, wall = collect(worker, episodes // 2)
            rate, steps = summarize(outcomes)
            label = "human()" if imperfect else "off"
            print(f"| {task} | {label} | {len(outcomes)} | {rate:.0f}% | {steps:.0f} | {wall:.1f} |")


def takeovers(episodes: int) -> None:
    print("| poor policy (30-200 steps first) | episodes | takeover success | stage at takeover (mean) | wall s |")
    print("|---|---:|---:|---:|---:|")
    for kind in ("random_walk", "noisy_operator"):
        worker = functools.partial(takeover_worker, episodes=episodes // 2, kind=kind)
        outcomes, wall = collect(worker, episodes // 2)
        rate, _ = summarize(outcomes)
        stage = np.mean([o.stage_at_takeover for o in outcomes])
        print(f"| {kind} | {len(outcomes)} | {rate:.0f}% | {stage:.2f} | {wall:.1f} |")


def live_loop(episodes: int) -> None:
    print("| task | policy | episodes | success | takeovers/episode | operator share of steps |")
    print("|---|---|---:|---:|---:|---:|")
    for task in ("transfer_cube", "insertion"):
        driver = AlohaSimDriver(task, cameras=[])
        operator = ScriptedOperator(seed=0)
        outcomes = [
            assisted_episode(driver, operator, lambda d: d.last_command.copy(), seed, max_steps=900)
            for seed in range(episodes)
        ]
        rate, _ = summarize(outcomes)
        takeovers_per = np.mean([len(o.takeovers) for o in outcomes])
        share = np.sum([o.operator_steps for o in outcomes]) / np.sum([o.steps for o in outcomes])
        print(
            f"| {task} | holds still (stall trigger) | {episodes} | {rate:.0f}% | {takeovers_per:.1f} | {share:.2f} |"
        )
        driver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100, help="episodes per task / setting")
    parser.add_argument("--steps", type=int, default=300, help="control steps per throughput block")
    parser.add_argument("--live-episodes", type=int, default=10, help="episodes of the live-loop check")
    args = parser.parse_args()
    throughput(args.steps)
    print()
    demonstrations(args.episodes)
    print()
    takeovers(args.episodes)
    print()
    live_loop(args.live_episodes)


if __name__ == "__main__":
    main()

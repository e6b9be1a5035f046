"""Benchmark of lwd_policy inference: chunk latency, 50 Hz control-loop jitter, starvation, batch inference.

    .venv/bin/python bench/inference.py                    # full run: 10,000 control steps (200 s)
    .venv/bin/python bench/inference.py --steps 1000       # shorter loop

Measures, for the default VLAConfig (H=20, D=14, K=10, one 96x128 camera) on
one intra-op thread: (1) chunk inference latency p50/p99 (preprocessing +
encode + K Euler steps + un-normalization, instruction embedding cached);
(2) the realtime runtime driven by a 50 Hz loop: period jitter, step() cost,
starved steps, chunk latency, dropped chunks, with a hot swap every 2,000
steps; (3) batched inference for N simulated robots. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lwd_policy.checkpoint import load_checkpoint, save_checkpoint
from lwd_policy.config import VLAConfig
from lwd_policy.inference import ChunkPredictor, PolicyObservation
from lwd_policy.language import InstructionEncoder
from lwd_policy.model import FlowMatchingVLA
from lwd_policy.normalization import Normalizer
from lwd_policy.runtime import CommandStatus, InferenceRuntime, RuntimeConfig
from lwd_policy.safety import robot_limits

INSTRUCTION = "pick up the red cube with the right arm and hand it to the left arm"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of ``values``."""
    return float(np.percentile(np.asarray(values), q))


def make_checkpoints(root: Path, config: VLAConfig, count: int) -> list[Path]:
    """``count`` randomly initialised default-size checkpoints v000001.. under ``root``."""
    folders = []
    for index in range(1, count + 1):
        torch.manual_seed(index)
        folder = root / f"v{index:06d}"
        save_checkpoint(FlowMatchingVLA(config), Normalizer.identity(14, 14), folder, f"v{index:06d}")
        folders.append(folder)
    return folders


def observation(stamp: float, config: VLAConfig, rng: np.random.Generator) -> PolicyObservation:
    """A fresh random frame and joint vector, as a robot would deliver each step."""
    images = {
        c: rng.integers(0, 256, (config.image_height, config.image_width, 3), dtype=np.uint8) for c in config.cameras
    }
    return PolicyObservation(stamp=stamp, qpos=rng.normal(0, 0.1, 14), images=images, instruction=INSTRUCTION)


def bench_latency(predictor: ChunkPredictor, iterations: int) -> dict[str, float]:
    """Chunk latency [ms] of single-robot inference."""
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        predictor.predict([observation(0.0, predictor.config, rng)], generator)
    totals = []
    for _ in range(iterations):
        obs = observation(0.0, predictor.config, rng)
        start = time.perf_counter()
        predictor.predict([obs], generator)
        totals.append((time.perf_counter() - start) * 1e3)
    return {"p50": percentile(totals, 50), "p99": percentile(totals, 99), "max": max(totals)}


def bench_batch(predictor: ChunkPredictor, sizes: list[int], iterations: int) -> list[tuple[int, float, float]]:
    """(robots, ms per batched call, ms per robot) for each batch size (median over iterations)."""
    rng = np.random.default_rng(1)
    generator = torch.Generator().manual_seed(0)
    rows = []
    for size in sizes:
        observations = [observation(0.0, predictor.config, rng) for _ in range(size)]
        predictor.predict(observations, generator)
        times = []
        for _ in range(iterations):
            start = time.perf_counter()
            predictor.predict(observations, generator)
            times.append((time.perf_counter() - start) * 1e3)
        median = statistics.median(times)
        rows.append((size, median, median / size))
    return rows


def bench_loop(predictor: ChunkPredictor, folders: list[Path], steps: int, period: float) -> dict[str, float]:
    """Drive the realtime runtime at ``1/period`` Hz for ``steps`` steps; swap weights every 2,000 steps."""
    config = RuntimeConfig(mode="realtime", torch_threads=1)
    runtime = InferenceRuntime(predictor, robot_limits(), config)
    rng = np.random.default_rng(2)
    frames = [observation(0.0, predictor.config, rng) for _ in range(16)]
    periods, step_costs, latencies = [], [], []
    statuses: dict[CommandStatus, int] = {}
    swaps = []
    overruns = skipped_ticks = 0
    with runtime:
        start = time.perf_counter()
        previous_tick = None
        tick_index = 0
        for i in range(steps):
            delay = start + tick_index * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            tick = time.perf_counter()
            late_ticks = int((tick - start) / period) - tick_index
            if late_ticks > 0:
                overruns += 1
                skipped_ticks += late_ticks
                tick_index += late_ticks
            tick_index += 1
            if previous_tick is not None:
                periods.append((tick - previous_tick) * 1e3)
            previous_tick = tick
            if i and i % 2000 == 0:
                swaps.append(runtime.offer_checkpoint(folders[(i // 2000) % len(folders)]))
            frame = frames[i % len(frames)]
            now = tick - start
            obs = PolicyObservation(now, frame.qpos, frame.images, frame.instruction)
            result = runtime.step(obs, now)
            step_costs.append((time.perf_counter() - tick) * 1e3)
            statuses[result.status] = statuses.get(result.status, 0) + 1
            latencies += [chunk.inference_latency * 1e3 for chunk in result.new_chunks]
    deviations = [abs(p - period * 1e3) for p in periods]
    counters = runtime.counters
    return {
        "steps": steps,
        "period_mean": statistics.fmean(periods),
        "period_std": statistics.pstdev(periods),
        "jitter_p50": percentile(deviations, 50),
        "jitter_p99": percentile(deviations, 99),
        "jitter_max": max(deviations),
        "step_p99": percentile(step_costs, 99),
        "step_max": max(step_costs),
        "latency_p50": percentile(latencies, 50),
        "latency_p99": percentile(latencies, 99),
        "latency_max": max(latencies),
        "chunks": counters.chunks,
        "starved": counters.held_starved,
        "waiting": counters.held_waiting,
        "missed": counters.missed_deadlines,
        "policy_steps": statuses.get(CommandStatus.POLICY, 0),
        "swaps": counters.swaps,
        "swaps_accepted": sum(f.result().accepted for f in swaps),
        "overruns": overruns,
        "skipped_ticks": skipped_ticks,
    }


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000, help="control-loop steps at 50 Hz (default 10,000)")
    parser.add_argument("--iterations", type=int, default=300, help="timed single-robot inferences")
    parser.add_argument("--batch-sizes", default="1,4,8,16", help="robots per batched inference")
    parser.add_argument("--device", default="cpu", help="torch device for the latency rows (cpu, cuda)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = VLAConfig()
    encoder = InstructionEncoder()
    encoder.embed([INSTRUCTION])
    with tempfile.TemporaryDirectory() as tmp:
        folders = make_checkpoints(Path(tmp), config, 3)
        predictor = ChunkPredictor(load_checkpoint(folders[0], device=args.device), encoder)
        parameters = sum(p.numel() for p in predictor.model.parameters())
        latency = bench_latency(predictor, args.iterations)
        batch = bench_batch(predictor, [int(s) for s in args.batch_sizes.split(",")], max(20, args.iterations // 10))
        loop = bench_loop(predictor, folders, args.steps, config.control_period)
    span = config.chunk_duration * 1e3
    print(
        f"\nDefault model: {parameters / 1e6:.2f} M parameters, H={config.horizon}, D={config.action_dim}, "
        f"K={config.flow_steps}, cameras={list(config.cameras)} {config.image_height}x{config.image_width}, "
        f"torch {torch.__version__}, 1 intra-op thread, device {args.device}\n"
    )
    print("| chunk inference (1 robot) | p50 | p99 | max | p99 / chunk span |")
    print("|---|---|---|---|---|")
    print(
        f"| latency [ms], {args.iterations} chunks | {latency['p50']:.2f} | {latency['p99']:.2f} | "
        f"{latency['max']:.2f} | {latency['p99'] / span:.1%} of {span:.0f} ms |"
    )
    print("\n| batched inference | ms per call | ms per robot | speed-up vs 1 robot |")
    print("|---|---|---|---|")
    single = batch[0][2]
    for size, per_call, per_robot in batch:
        print(f"| {size} robot(s) | {per_call:.2f} | {per_robot:.2f} | {single / per_robot:.2f}x |")
    print(f"\n| 50 Hz control loop, realtime runtime ({loop['steps']} steps) | value |")
    print("|---|---|")
    rows = [
        ("period mean / std [ms]", f"{loop['period_mean']:.3f} / {loop['period_std']:.3f}"),
        (
            "period jitter (deviation from 20 ms) p50 / p99 / max [ms]",
            f"{loop['jitter_p50']:.3f} / {loop['jitter_p99']:.3f} / {loop['jitter_max']:.3f}",
        ),
        ("step() cost p99 / max [ms]", f"{loop['step_p99']:.3f} / {loop['step_max']:.3f}"),
        (
            "chunk latency in loop p50 / p99 / max [ms]",
            f"{loop['latency_p50']:.2f} / {loop['latency_p99']:.2f} / {loop['latency_max']:.2f}",
        ),
        ("chunk latency p99 / chunk span", f"{loop['latency_p99'] / span:.1%}"),
        ("chunks / dropped (missed deadline)", f"{loop['chunks']} / {loop['missed']}"),
        ("policy steps / waiting (before first chunk)", f"{loop['policy_steps']} / {loop['waiting']}"),
        ("loop overruns (tick later than one period) / ticks skipped", f"{loop['overruns']} / {loop['skipped_ticks']}"),
        ("**starved steps**", f"**{loop['starved']}**"),
        ("hot swaps done / offered checkpoints accepted", f"{loop['swaps']} / {loop['swaps_accepted']}"),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

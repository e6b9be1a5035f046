"""A simulated fleet: N robot workers in separate processes, each with its own id and seed stream.

``run_fleet(worker, n_robots, seed)`` starts one ``spawn`` process per robot (at most
``processes`` at a time) and calls ``worker(spec)`` there; ``spec`` carries the robot id and an
independent ``numpy.random.SeedSequence`` child (``SeedSequence(seed).spawn(n_robots)``), so runs
are reproducible and robots never share random streams. ``worker`` must be picklable (a
module-level function or a ``functools.partial`` of one); the lead's runner plugs the whole robot
loop in here. Every robot yields a ``WorkerResult``: its return value, or the exception traceback,
or the exit code of a process that died without answering; one crash never stops the others.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np


class FleetError(RuntimeError):
    """The fleet could not be run as asked (bad arguments)."""


@dataclass(frozen=True)
class WorkerSpec:
    """What one robot process receives."""

    robot_id: str
    index: int
    seed_sequence: np.random.SeedSequence

    def rng(self) -> np.random.Generator:
        """This robot's random generator."""
        return np.random.default_rng(self.seed_sequence)

    def episode_seeds(self, count: int) -> list[int]:
        """``count`` episode seeds private to this robot (stable for a given fleet seed)."""
        return [int(value) for value in self.seed_sequence.generate_state(count, dtype=np.uint32)]


@dataclass(frozen=True)
class WorkerResult:
    """The outcome of one robot process."""

    robot_id: str
    ok: bool
    value: Any = None
    error: str | None = None
    exitcode: int | None = None


def robot_ids(n_robots: int, prefix: str = "sim") -> list[str]:
    """Robot ids ``<prefix>-00``, ``<prefix>-01``, ..."""
    return [f"{prefix}-{index:02d}" for index in range(n_robots)]


def _run_worker(worker: Callable[[WorkerSpec], Any], spec: WorkerSpec, connection: Connection) -> None:
    try:
        value = worker(spec)
    except BaseException as error:  # report every failure, including KeyboardInterrupt/SystemExit
        connection.send((False, None, f"{type(error).__name__}: {error}\n{traceback.format_exc()}"))
    else:
        connection.send((True, value, None))
    finally:
        connection.close()


def run_fleet(
    worker: Callable[[WorkerSpec], Any],
    n_robots: int,
    seed: int = 0,
    processes: int | None = None,
    prefix: str = "sim",
    timeout_s: float | None = None,
) -> list[WorkerResult]:
    """Run ``worker`` once per robot in spawned processes; results are in robot order."""
    if n_robots < 1:
        raise FleetError(f"n_robots must be at least 1, got {n_robots}")
    limit = processes or n_robots
    if limit < 1:
        raise FleetError(f"processes must be at least 1, got {processes}")
    context = multiprocessing.get_context("spawn")
    specs = [
        WorkerSpec(robot_id, index, sequence)
        for index, (robot_id, sequence) in enumerate(
            zip(robot_ids(n_robots, prefix), np.random.SeedSequence(seed).spawn(n_robots), strict=True)
        )
    ]
    results: dict[int, WorkerResult] = {}
    running: dict[int, tuple[multiprocessing.process.BaseProcess, Connection]] = {}
    pending = list(specs)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while pending or running:
        while pending and len(running) < limit:
            spec = pending.pop(0)
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_run_worker, args=(worker, spec, sender), name=spec.robot_id)
            process.start()
            sender.close()
            running[spec.index] = (process, receiver)
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready = wait([receiver for _, receiver in running.values()], timeout=remaining)
        if not ready and deadline is not None and time.monotonic() >= deadline:
            for index, (process, receiver) in running.items():
                process.terminate()
                process.join()
                receiver.close()
                results[index] = WorkerResult(specs[index].robot_id, False, error=f"timed out after {timeout_s} s")
            running.clear()
            break
        for index in [i for i, (_, receiver) in running.items() if receiver in ready]:
            process, receiver = running.pop(index)
            robot_id = specs[index].robot_id
            try:
                ok, value, error = receiver.recv()
            except EOFError:
                process.join()
                results[index] = WorkerResult(
                    robot_id,
                    False,
                    error=f"worker process died without a result (exit code {process.exitcode})",
                    exitcode=process.exitcode,
                )
            else:
                process.join()
                results[index] = WorkerResult(robot_id, ok, value, error, process.exitcode)
            receiver.close()
    for spec in pending:
        results[spec.index] = WorkerResult(spec.robot_id, False, error="not started: the fleet timed out")
    return [results[index] for index in range(n_robots)]

"""The simulated fleet's processes: one long-lived worker process per robot, fed from one job queue.

``ProcessFleet(make_worker, settings, names)`` starts one ``spawn`` process per entry of
``settings``; each builds its worker once (``make_worker(settings)``: a whole robot stack, with its
own MuJoCo, policy runtime and spool) and then runs the jobs it is sent, so a robot keeps its state
between episodes. One crash never stops the others: a job that raises is reported failed with its
traceback and the worker goes on; a process that dies is reported, and restarted up to
``max_restarts`` times in all.

``run_fleet(worker, n_robots, seed)`` is the one-shot form the measurement commands use: each robot
runs ``worker(spec)`` once, where ``spec`` carries its id and an independent
``numpy.random.SeedSequence`` child, so runs are reproducible and robots never share random streams.
Workers and their settings must be picklable (module-level functions, ``functools.partial``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

import numpy as np

LOG = logging.getLogger(__name__)


class FleetError(RuntimeError):
    """The fleet cannot run as asked: bad arguments, or robots that keep dying."""


class Worker(Protocol):
    """What a fleet process hosts: it runs one job at a time and is closed when the fleet stops."""

    def run(self, job: Any) -> Any:
        """Run one job and return its (picklable) result."""

    def close(self) -> None:
        """Release what the worker holds."""


@dataclass
class JobFailure:
    """A job whose worker raised an error (with its traceback) or whose process died while running it."""

    robot_id: str
    job: Any
    error: str
    exitcode: int | None = None


def _worker_main(make_worker: Callable[[Any], Worker], settings: Any, connection: Connection) -> None:
    """Body of a fleet process: build the worker, then run jobs until told to stop (None)."""
    worker = make_worker(settings)
    connection.send(("ready", os.getpid()))
    try:
        while (job := connection.recv()) is not None:
            try:
                connection.send(("done", worker.run(job)))
            except Exception as error:  # reported to the parent, which decides; the worker keeps serving
                connection.send(("error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}"))
    finally:
        worker.close()


class ProcessFleet:
    """One process per robot, fed from one job queue; a process that dies is restarted up to ``max_restarts``."""

    def __init__(
        self,
        make_worker: Callable[[Any], Worker],
        settings: Sequence[Any],
        names: Sequence[str],
        max_restarts: int = 10,
    ) -> None:
        if not settings or len(settings) != len(names):
            raise FleetError(f"need one name per robot and at least one robot, got {len(settings)} and {len(names)}")
        self.make_worker = make_worker
        self.settings = list(settings)
        self.names = list(names)
        self.max_restarts = max_restarts
        self.restarts = 0
        self._context = multiprocessing.get_context("spawn")
        self._ready: set[int] = set()
        started = [self._spawn(index) for index in range(len(self.settings))]
        self._processes = [process for process, _ in started]
        self._connections = [connection for _, connection in started]

    def _spawn(self, index: int) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main,
            args=(self.make_worker, self.settings[index], child),
            name=self.names[index],
            daemon=True,
        )
        process.start()
        child.close()
        return process, parent

    def pid(self, index: int) -> int | None:
        """Process id of robot ``index`` (for fault injection)."""
        return self._processes[index].pid

    def run(
        self,
        jobs: Sequence[Any],
        on_done: Callable[[Any], None] | None = None,
        on_failure: Callable[[JobFailure], None] | None = None,
    ) -> tuple[list[Any], list[JobFailure]]:
        """Run every job on whichever robot is free; returns the results and the failed jobs, in finishing order."""
        queue = deque(jobs)
        busy: dict[int, Any] = {}
        done: list[Any] = []
        failures: list[JobFailure] = []

        def fail(index: int, error: str, exitcode: int | None = None) -> None:
            failure = JobFailure(self.names[index], busy.pop(index), error, exitcode)
            failures.append(failure)
            LOG.error("%s failed %s: %s", failure.robot_id, failure.job, error)
            if on_failure is not None:
                on_failure(failure)

        while queue or busy:
            for index in range(len(self.settings)):
                if index in self._ready and index not in busy and queue:
                    busy[index] = queue.popleft()
                    self._connections[index].send(busy[index])
            sources = {connection: i for i, connection in enumerate(self._connections)}
            sources |= {process.sentinel: i for i, process in enumerate(self._processes)}
            restarted: set[int] = set()
            for source in wait(list(sources), timeout=60.0):
                index = sources[source]
                if index in restarted:
                    continue  # the dead process's other handle (pipe or sentinel): it says nothing about the new one
                kind, value = self._receive(index, source)
                if kind == "ready":
                    self._ready.add(index)
                elif kind == "done":
                    busy.pop(index)
                    done.append(value)
                    if on_done is not None:
                        on_done(value)
                elif kind == "error":
                    fail(index, value)
                else:
                    self._processes[index].join(timeout=5)
                    exitcode = self._processes[index].exitcode
                    if index in busy:
                        fail(index, f"robot process died without a result (exit code {exitcode})", exitcode)
                    self._restart(index, exitcode)
                    restarted.add(index)
        return done, failures

    def _receive(self, index: int, source: object) -> tuple[str, Any]:
        """The next message from robot ``index``, or ("dead", None) when its process is gone."""
        connection = self._connections[index]
        if source is not connection and not connection.poll():
            return "dead", None
        try:
            return connection.recv()
        except (EOFError, ConnectionResetError):
            return "dead", None

    def _restart(self, index: int, exitcode: int | None) -> None:
        self._ready.discard(index)
        if self.restarts >= self.max_restarts:
            raise FleetError(
                f"{self.names[index]} died (exit code {exitcode}) and the fleet has used all {self.max_restarts} "
                "restarts; see the robot's log lines above"
            )
        LOG.warning("%s died (exit code %s); restarting it", self.names[index], exitcode)
        self.restarts += 1
        self._processes[index], self._connections[index] = self._spawn(index)

    def kill(self, index: int) -> None:
        """SIGKILL robot ``index`` (fault injection: a robot crashing mid-episode)."""
        pid = self.pid(index)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        """Stop every robot process."""
        for connection, process in zip(self._connections, self._processes, strict=True):
            if process.is_alive():
                try:
                    connection.send(None)
                except (BrokenPipeError, OSError):
                    process.kill()
        for process in self._processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


@dataclass(frozen=True)
class WorkerSpec:
    """What one robot of ``run_fleet`` receives."""

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
    """The outcome of one robot of ``run_fleet``."""

    robot_id: str
    ok: bool
    value: Any = None
    error: str | None = None
    exitcode: int | None = None


class _CallOnce:
    """A fleet worker that calls ``function(spec)`` for each spec it is sent, tagging the result with the spec."""

    def __init__(self, function: Callable[[WorkerSpec], Any]) -> None:
        self.function = function

    def run(self, spec: WorkerSpec) -> tuple[int, Any]:
        return spec.index, self.function(spec)

    def close(self) -> None:
        """Nothing to release: the function holds no resources between specs."""


def robot_ids(n_robots: int, prefix: str = "sim") -> list[str]:
    """Robot ids ``<prefix>-00``, ``<prefix>-01``, ..."""
    return [f"{prefix}-{index:02d}" for index in range(n_robots)]


def run_fleet(
    worker: Callable[[WorkerSpec], Any],
    n_robots: int,
    seed: int = 0,
    processes: int | None = None,
    prefix: str = "sim",
) -> list[WorkerResult]:
    """Run ``worker`` once per robot, at most ``processes`` at a time; results are in robot order."""
    if n_robots < 1:
        raise FleetError(f"n_robots must be at least 1, got {n_robots}")
    limit = processes or n_robots
    if limit < 1:
        raise FleetError(f"processes must be at least 1, got {processes}")
    sequences = np.random.SeedSequence(seed).spawn(n_robots)
    specs = [WorkerSpec(robot_id, i, sequences[i]) for i, robot_id in enumerate(robot_ids(n_robots, prefix))]
    slots = min(limit, n_robots)
    fleet = ProcessFleet(_CallOnce, [worker] * slots, [f"{prefix}-process-{i}" for i in range(slots)], n_robots)
    try:
        done, failures = fleet.run(specs)
    finally:
        fleet.close()
    results = {index: WorkerResult(specs[index].robot_id, True, value) for index, value in done}
    for failure in failures:
        spec = failure.job
        results[spec.index] = WorkerResult(spec.robot_id, False, error=failure.error, exitcode=failure.exitcode)
    return [results[index] for index in range(n_robots)]

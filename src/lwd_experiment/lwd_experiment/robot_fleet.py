"""A fleet of long-lived simulated robot processes that run the episodes they are sent.

Each robot is its own process (its own MuJoCo, policy runtime, recorder, spool and
bridge), so robots meet only through the fleet store, and new policy versions are
hot-swapped into running robots between episodes. A robot process that dies is
reported and restarted; its unfinished episode stays in its spool as a partial
bag, which recovery marks incomplete — it is never used as a complete episode.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from lwd_experiment.sim_robot import EpisodeSummary, RobotSettings

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to run: task, seed, mode (robot.MODES) and whether to keep its frames."""

    task: str
    seed: int
    mode: str = "deployment"
    capture: bool = False


@dataclass
class JobFailure:
    """A job whose robot raised an error or died while running it."""

    robot_id: str
    job: EpisodeJob
    error: str


def _robot_main(settings: RobotSettings, connection: Connection) -> None:
    """Body of a robot process: build the robot, then run jobs until told to stop (None)."""
    import torch

    from lwd_experiment.sim_robot import SimRobot

    logging.basicConfig(level=logging.WARNING, format=f"%(levelname)s {settings.robot_id}: %(message)s")
    torch.set_num_threads(1)
    robot = SimRobot(settings)
    connection.send(("ready", os.getpid()))
    try:
        while (job := connection.recv()) is not None:
            try:
                connection.send(("done", robot.run_episode(job.task, job.seed, job.mode, job.capture)))
            except Exception as error:  # reported to the parent, which decides; the robot keeps serving
                connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        robot.close()


class FleetError(RuntimeError):
    """The fleet cannot keep robots running (they die before becoming ready)."""


class RobotFleet:
    """N robot processes fed from one job queue; a robot that dies is restarted up to ``max_restarts`` times."""

    def __init__(self, settings: list[RobotSettings], max_restarts: int = 10) -> None:
        self.settings = settings
        self.max_restarts = max_restarts
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[multiprocessing.process.BaseProcess | None] = [None] * len(settings)
        self._connections: list[Connection | None] = [None] * len(settings)
        self.restarts = 0
        self._ready: set[int] = set()
        for index in range(len(settings)):
            self._start(index)

    def _start(self, index: int) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_robot_main, args=(self.settings[index], child), name=self.settings[index].robot_id, daemon=True
        )
        process.start()
        child.close()
        self._processes[index], self._connections[index] = process, parent

    def pid(self, index: int) -> int | None:
        """Process id of robot ``index`` (for fault injection)."""
        process = self._processes[index]
        return process.pid if process is not None else None

    def run(
        self,
        jobs: list[EpisodeJob],
        on_done: Callable[[EpisodeSummary], None] | None = None,
        on_failure: Callable[[JobFailure], None] | None = None,
    ) -> tuple[list[EpisodeSummary], list[JobFailure]]:
        """Run every job on whichever robot is free; a dead robot is restarted and its job reported failed."""
        queue = deque(jobs)
        busy: dict[int, EpisodeJob] = {}
        done: list[EpisodeSummary] = []
        failures: list[JobFailure] = []

        def fail(index: int, job: EpisodeJob, error: str) -> None:
            failure = JobFailure(self.settings[index].robot_id, job, error)
            failures.append(failure)
            LOG.error("%s failed %s: %s", failure.robot_id, job, error)
            if on_failure is not None:
                on_failure(failure)

        while queue or busy:
            for index in range(len(self.settings)):
                if index in self._ready and index not in busy and queue:
                    job = queue.popleft()
                    self._connections[index].send(job)
                    busy[index] = job
            sources = {self._connections[i]: i for i in range(len(self.settings))}
            sources |= {self._processes[i].sentinel: i for i in range(len(self.settings))}
            restarted: set[int] = set()
            for source in wait(list(sources), timeout=60.0):
                index = sources[source]
                if index in restarted:
                    continue  # the dead process's other handle (pipe or sentinel): it says nothing about the new one
                connection = self._connections[index]
                if source is connection or connection.poll():
                    try:
                        kind, value = connection.recv()
                    except (EOFError, ConnectionResetError):
                        kind, value = "dead", None
                else:
                    kind, value = "dead", None
                if kind == "ready":
                    self._ready.add(index)
                elif kind == "done":
                    busy.pop(index)
                    done.append(value)
                    if on_done is not None:
                        on_done(value)
                elif kind == "error":
                    fail(index, busy.pop(index), value)
                elif kind == "dead" and self._processes[index] is not None:
                    exitcode = self._processes[index].exitcode
                    if index in busy:
                        fail(index, busy.pop(index), f"robot process died (exit code {exitcode})")
                    self._ready.discard(index)
                    if self.restarts >= self.max_restarts:
                        raise FleetError(
                            f"{self.settings[index].robot_id} died (exit code {exitcode}) and the fleet has used "
                            f"all {self.max_restarts} restarts; see the robot's log lines above"
                        )
                    LOG.warning("%s died (exit code %s); restarting it", self.settings[index].robot_id, exitcode)
                    self._processes[index].join(timeout=5)
                    self.restarts += 1
                    self._start(index)
                    restarted.add(index)
        return done, failures

    def kill(self, index: int) -> None:
        """SIGKILL robot ``index`` (fault injection: a robot crashing mid-episode)."""
        pid = self.pid(index)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        """Stop every robot process."""
        for index, connection in enumerate(self._connections):
            process = self._processes[index]
            if connection is not None and process is not None and process.is_alive():
                try:
                    connection.send(None)
                except (BrokenPipeError, OSError):
                    process.kill()
        for process in self._processes:
            if process is not None:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()

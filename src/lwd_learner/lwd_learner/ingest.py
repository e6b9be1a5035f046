"""Parallel ingest: verify and decode new episodes in worker processes, hand them back in a fixed order.

Checking a bag against its manifest (a sha256 of every byte) and decoding it (CDR deserialization of every
image) are the CPU-bound parts of ingest that need no model; ``IngestPool`` runs them in
``ingest_workers`` processes (a ``concurrent.futures.ProcessPoolExecutor``, spawned so that no trainer
thread or lock is forked) while the trainer encodes the episodes already decoded. Results are yielded
in the order the jobs were given, never in the order workers finish, so the replay buffer is filled the
same way whatever the timing. With 0 workers the same work runs in the trainer's own process.

A worker that dies (killed, out of memory) breaks the pool: the episodes not yet handed back are submitted
again to a fresh pool, up to ``max_restarts`` times per call; what is still not done after that is yielded
as ``None`` ("try again at the next scan"), never as a bad episode.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from lwd_interfaces.manifest import Manifest

from lwd_fleet import quarantine
from lwd_learner.dataset import Episode, EpisodeError, verified_manifest
from lwd_learner.episode_cache import EpisodeCache

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestJob:
    """One committed episode to prepare: its store key, the local folder of its files, where to cache it."""

    relative: str
    local: str
    cache_dir: str
    cameras: tuple[str, ...]


@dataclass
class Prepared:
    """A verified, decoded episode, or why it cannot be one (``reason`` from lwd_fleet.quarantine, ``detail``)."""

    manifest: Manifest | None = None
    episode: Episode | None = None
    reason: str = ""
    detail: str = ""


def prepare_episode(job: IngestJob) -> Prepared:
    """Verify an episode folder against its manifest and decode it (through the episode cache).

    Never raises for a bad episode: the reason travels back as data, since an exception's extra fields do not
    survive the trip between processes.
    """
    try:
        manifest = verified_manifest(job.local)
        episode = EpisodeCache(job.cache_dir).load(job.local, manifest.digest, cameras=job.cameras)
    except EpisodeError as error:
        return Prepared(reason=error.reason, detail=str(error))
    except Exception as error:  # one bad episode must never stop the trainer, whatever it breaks
        LOGGER.exception("episode %s could not be prepared", job.relative)
        return Prepared(reason=quarantine.UNREADABLE, detail=f"{job.relative}: {type(error).__name__}: {error}")
    return Prepared(manifest=manifest, episode=episode)


def _ready() -> bool:
    """A task that only proves a worker is up (its import of this module is the start-up cost)."""
    return True


class IngestPool:
    """Prepares ingest jobs in worker processes (or in-process with 0 workers), yielding results in job order."""

    def __init__(
        self, workers: int = 0, prepare: Callable[[IngestJob], Prepared] = prepare_episode, max_restarts: int = 2
    ) -> None:
        """``prepare`` runs in the workers (a module-level function, so it can be sent to them)."""
        if workers < 0:
            raise ValueError(f"ingest_workers must be >= 0 (0: in the trainer's process), got {workers}")
        self.workers = workers
        self.prepare = prepare
        self.max_restarts = max_restarts
        self.restarts = 0
        self._executor: Executor | None = None

    def prepared(self, jobs: list[IngestJob]) -> Iterator[tuple[IngestJob, Prepared | None]]:
        """``(job, result)`` for every job, in the given order; ``None``: a worker died on it, retry later."""
        if self.workers == 0:
            for job in jobs:
                yield job, self.prepare(job)
            return
        remaining, restarts = list(jobs), 0
        while remaining:
            executor = self._pool()
            futures = [executor.submit(self.prepare, job) for job in remaining]
            for index, (job, future) in enumerate(zip(remaining, futures, strict=True)):
                try:
                    result = future.result()
                except BrokenProcessPool:
                    remaining = remaining[index:]
                    break
                yield job, result
            else:
                return
            self.close()
            restarts += 1
            self.restarts += 1
            LOGGER.warning("an ingest worker died; %d episodes submitted again to a fresh pool", len(remaining))
            if restarts > self.max_restarts:
                LOGGER.error("ingest workers keep dying; %d episodes wait for the next scan", len(remaining))
                for job in remaining:
                    yield job, None
                return

    def warm_up(self) -> None:
        """Start the worker processes now and wait until each has imported the ingest code (no-op in-process)."""
        if self.workers:
            executor = self._pool()
            for future in [executor.submit(_ready) for _ in range(self.workers)]:
                future.result()

    def _pool(self) -> Executor:
        if self._executor is None:
            context = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self._executor

    def close(self) -> None:
        """Stop the worker processes (a later call starts new ones)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

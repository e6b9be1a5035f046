"""An ingest ``prepare`` whose worker process dies (SIGKILL) the first time it is handed one chosen episode.

Lives in its own module so that spawned ingest workers can import it by name (the test modules are imported
by pytest with ``--import-mode=importlib`` and cannot be).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from lwd_learner.ingest import IngestJob, Prepared, prepare_episode

VICTIM = "dep1"


def marker(cache_dir: str) -> Path:
    """The file that records that a worker was killed (beside the episode cache, so one per trainer)."""
    return Path(cache_dir).parent / f"killed-{VICTIM}"


def die_once_on_victim(job: IngestJob) -> Prepared:
    """Prepare ``job``; the first time it is the victim, the worker kills itself mid-batch instead."""
    if Path(job.relative).name == VICTIM and not marker(job.cache_dir).exists():
        marker(job.cache_dir).touch()
        time.sleep(0.2)  # let the other worker pick up work, so the pool dies with jobs in flight
        os.kill(os.getpid(), signal.SIGKILL)
    return prepare_episode(job)

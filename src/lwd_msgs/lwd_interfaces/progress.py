"""Live progress of a long command: how far it is, how fast it goes and how long is left, a line every few seconds.

Every line starts with ``progress``: that prefix is the contract between a long-running command (BC
pretraining, the trainer service) and whoever runs it, so a parent process such as the demo loop can pick
the lines out of a child's output and show them on its console while the whole output goes to a log.
"""

from __future__ import annotations

import time
from collections.abc import Callable

PREFIX = "progress"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class ProgressMeter:
    """Throttled progress lines for ``total`` units of work of one kind (``unit``), e.g. BC steps.

    A line's rate, and the time left from it, are measured since the previous line, so they follow a change of
    pace (BC's perception steps are ten times slower than its flow steps) and never count the start-up before
    the first unit (the trainer's first ingest, minutes long), which would put hours on the first estimate. The
    last line gives the mean rate since the first ``update`` and the whole time since the meter was made. A
    resumed run's rates count only its own work.
    """

    def __init__(
        self,
        what: str,
        total: int | None,
        unit: str,
        every_s: float = 5.0,
        emit: Callable[[str], None] = lambda line: print(line, flush=True),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.total = total
        self.unit = unit
        self.every_s = every_s
        self.emit = emit
        self.clock = clock
        self._start = clock()
        self._first_update: tuple[float, int] | None = None
        self._last_line: tuple[float, int] | None = None

    def update(self, done: int, detail: str = "") -> None:
        """Report ``done`` units so far; prints when ``every_s`` has passed since the last line, or at the end."""
        now = self.clock()
        finished = self.total is not None and done >= self.total
        if self._last_line is not None and now - self._last_line[0] < self.every_s and not finished:
            return
        since = self._first_update if finished else self._last_line
        self._first_update = self._first_update or (now, done)
        self._last_line = (now, done)
        rate = None
        if since is not None and now > since[0]:
            rate = (done - since[1]) / (now - since[0])
        parts = [f"{PREFIX} {self.what} {done}/{self.total if self.total is not None else '?'} {self.unit}"]
        if rate is not None:
            parts.append(f"{rate:.2f} {self.unit}/s")
        if finished:
            parts.append(f"done in {_duration(now - self._start)}")
        elif self.total is not None and rate:
            parts.append(f"{_duration((self.total - done) / rate)} left")
        if detail:
            parts.append(detail)
        self.emit(" | ".join(parts))

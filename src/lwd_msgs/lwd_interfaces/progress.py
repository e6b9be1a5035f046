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

    ``start`` is the units already done when the meter is made (a resumed trainer), so the rate counts
    only this run's work.
    """

    def __init__(
        self,
        what: str,
        total: int | None,
        unit: str,
        start: int = 0,
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
        self._first = start
        self._last_line = float("-inf")

    def update(self, done: int, detail: str = "") -> None:
        """Report ``done`` units so far; prints when ``every_s`` has passed since the last line, or at the end."""
        now = self.clock()
        finished = self.total is not None and done >= self.total
        if now - self._last_line < self.every_s and not finished:
            return
        self._last_line = now
        elapsed = now - self._start
        rate = (done - self._first) / elapsed if elapsed > 0 else 0.0
        parts = [f"{PREFIX} {self.what} {done}/{self.total if self.total is not None else '?'} {self.unit}"]
        parts.append(f"{rate:.2f} {self.unit}/s")
        if finished:
            parts.append(f"done in {_duration(elapsed)}")
        elif self.total is not None and rate > 0:
            parts.append(f"{_duration((self.total - done) / rate)} left")
        if detail:
            parts.append(detail)
        self.emit(" | ".join(parts))

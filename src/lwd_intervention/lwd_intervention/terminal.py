"""Raw-mode terminal I/O for the keyboard console: single key reads without Enter, full-screen redraws.

Kept to the bare minimum (termios/tty/select from the standard library) so all
console logic stays in :mod:`lwd_intervention.keyboard`, where it is tested.
"""

from __future__ import annotations

import os
import select
import sys
import termios
import tty
from types import TracebackType
from typing import TextIO

CLEAR_SCREEN = "\x1b[2J\x1b[H"


class RawTerminal:
    """Context manager: puts stdin in cbreak mode and restores it on exit, even after an error."""

    def __init__(self, stream: TextIO | None = None, output: TextIO | None = None) -> None:
        self.stream = stream or sys.stdin
        self.output = output or sys.stdout
        self._saved: list | None = None

    def __enter__(self) -> RawTerminal:
        if not self.stream.isatty():
            raise OSError("the keyboard console needs an interactive terminal on stdin")
        descriptor = self.stream.fileno()
        self._saved = termios.tcgetattr(descriptor)
        tty.setcbreak(descriptor)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._saved is not None:
            termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None
        self.output.write("\n")
        self.output.flush()

    def read_key(self, timeout_s: float) -> str | None:
        """One character typed within ``timeout_s``, or None."""
        ready, _, _ = select.select([self.stream], [], [], timeout_s)
        if not ready:
            return None
        data = os.read(self.stream.fileno(), 1)
        return data.decode(errors="replace") if data else None

    def draw(self, lines: list[str]) -> None:
        """Replace the screen with ``lines``."""
        self.output.write(CLEAR_SCREEN + "\r\n".join(lines) + "\r\n")
        self.output.flush()

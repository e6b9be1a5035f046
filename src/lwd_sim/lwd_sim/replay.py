"""Replaying one scene's demonstration on another: arm motion that says nothing about where the objects are.

In a demonstration the arm goes to the object, so a vision model trained on demonstration frames alone can learn
to read the object's position off the arm, and then follows the policy's arm wherever it goes (BENCHMARKS.md,
"The head reads the arm"). Replayed open loop on a scene drawn from another seed, the same commands move the
arms exactly as demonstrations do, toward where the other scene's objects were. Recorded with this scene's true
object positions, such episodes give perception labels whose arm positions carry no information about them.
``lwd_experiment.control_step.demonstration_commands`` gives the commands a robot executes in a demonstration.
"""

from __future__ import annotations

import numpy as np

from lwd_sim.aloha import AlohaSimDriver


class ReplayOperator:
    """An operator in control from the first step that sends recorded commands in order, whatever it sees; an
    episode it drives lasts ``len(commands)`` steps."""

    in_control = True

    def __init__(self, commands: np.ndarray) -> None:
        if commands.ndim != 2 or not len(commands):
            raise ValueError(f"a replay needs commands [T, D] with T > 0, got shape {commands.shape}")
        self.commands = commands
        self._next = 0

    def command(self, _driver: AlohaSimDriver) -> np.ndarray:
        """The next recorded command (IndexError past the last one)."""
        command = self.commands[self._next]
        self._next += 1
        return command.copy()

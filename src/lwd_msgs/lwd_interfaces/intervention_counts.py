"""How interventions are counted, written once for the live session and for a recorded bag.

An intervention is one entry into TELEOP mode (a takeover), however long it lasts and whether or not
the operator's input stays fresh throughout; an intervention step is a step whose executed command
came from an operator. The intervention session counts from the arbiter's outputs as it runs, the
recorder and crash recovery count from the recorded ``InterventionState`` messages: both with this
class, so a bag's ``lwd.interventions`` always equals what the robot reported live.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class InterventionCounts:
    """Interventions (entries into TELEOP) and intervention steps over one episode."""

    interventions: int = 0
    intervention_steps: int = 0
    _in_teleop: bool = False

    def observe(self, teleop: bool, operator_commands: bool) -> bool:
        """Count one control step: ``teleop`` if the robot is in TELEOP mode, ``operator_commands`` if an
        operator's command was executed. Returns True when this step starts an intervention."""
        started = teleop and not self._in_teleop
        self.interventions += started
        self.intervention_steps += operator_commands
        self._in_teleop = teleop
        return started

"""Per-episode intervention statistics, computed live from the arbiter's step outputs.

They count with :class:`lwd_interfaces.intervention_counts.InterventionCounts`, the rule the
recorder applies to the bag (``lwd.interventions``, ``lwd.intervention_steps``), so what the robot
reports live and what its bag says agree; the fleet dashboards compare them between policy versions.
"""

from __future__ import annotations

from lwd_interfaces.intervention_counts import InterventionCounts

from lwd_intervention.arbiter import NS_PER_S, StepOutput
from lwd_intervention.modes import Mode


class InterventionStats:
    """Counts steps, interventions (entries into TELEOP), intervention steps and time to first takeover."""

    def __init__(self, start_stamp_ns: int) -> None:
        self.start_stamp_ns = start_stamp_ns
        self.steps = 0
        self.counts = InterventionCounts()
        self.first_takeover_stamp_ns: int | None = None

    @property
    def interventions(self) -> int:
        """Entries into TELEOP so far."""
        return self.counts.interventions

    @property
    def intervention_steps(self) -> int:
        """Steps whose executed command came from an operator."""
        return self.counts.intervention_steps

    def update(self, output: StepOutput) -> None:
        """Account for one executed step."""
        self.steps += 1
        started = self.counts.observe(output.mode is Mode.TELEOP, output.intervention)
        if started and self.first_takeover_stamp_ns is None:
            self.first_takeover_stamp_ns = output.stamp_ns

    @property
    def time_to_first_takeover_s(self) -> float | None:
        """Seconds from the episode start to the first takeover, or None without one."""
        if self.first_takeover_stamp_ns is None:
            return None
        return (self.first_takeover_stamp_ns - self.start_stamp_ns) / NS_PER_S

    def as_metadata(self) -> dict[str, str]:
        """The bag custom-data entries these stats fill (all values strings, per docs/contracts.md)."""
        ttft = self.time_to_first_takeover_s
        return {
            "lwd.steps": str(self.steps),
            "lwd.interventions": str(self.interventions),
            "lwd.intervention_steps": str(self.intervention_steps),
            "lwd.time_to_first_takeover_s": "" if ttft is None else f"{ttft:.3f}",
        }

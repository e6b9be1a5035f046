"""Per-episode intervention statistics, computed from the arbiter's step outputs.

These are what the recorder writes into the bag's custom metadata
(``lwd.steps``, ``lwd.interventions``, ``lwd.intervention_steps``) and what the fleet
dashboards compare between policy versions.
"""

from __future__ import annotations

from lwd_intervention.arbiter import NS_PER_S, StepOutput
from lwd_intervention.modes import Mode


class EpisodeStats:
    """Counts steps, interventions (entries into TELEOP), intervention steps and time to first takeover."""

    def __init__(self, start_stamp_ns: int) -> None:
        self.start_stamp_ns = start_stamp_ns
        self.steps = 0
        self.interventions = 0
        self.intervention_steps = 0
        self.first_takeover_stamp_ns: int | None = None
        self._previous_mode: Mode | None = None

    def update(self, output: StepOutput) -> None:
        """Account for one executed step."""
        self.steps += 1
        if output.mode is Mode.TELEOP and self._previous_mode is not Mode.TELEOP:
            self.interventions += 1
            if self.first_takeover_stamp_ns is None:
                self.first_takeover_stamp_ns = output.stamp_ns
        if output.intervention:
            self.intervention_steps += 1
        self._previous_mode = output.mode

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

"""One robot's intervention session: arbiter, episode labeller and stats behind one event API.

Both hosts (the ROS node and the in-process ``lwd`` runner) feed it control steps and
operator events from any device and publish what it returns, in order: episode
events and reward labels. Success/failure labels *and* end the open episode (the
label first, so the recorder has it when the end arrives); discard and rerecord go to
the recorder as episode events; mode events go to the arbiter.
"""

from __future__ import annotations

from dataclasses import dataclass

from lwd_intervention.arbiter import Arbiter, StepInput, StepOutput
from lwd_intervention.events import ARBITER_EVENTS, OperatorEvent
from lwd_intervention.intervention_stats import InterventionStats
from lwd_intervention.labels import (
    EpisodeEventRecord,
    EpisodeInfo,
    EpisodeLabeler,
    EpisodeStateError,
    RewardLabelRecord,
    new_episode_id,
)
from lwd_intervention.modes import Mode

Record = EpisodeEventRecord | RewardLabelRecord
MODE_EVENTS = {
    Mode.AUTONOMOUS: OperatorEvent.HAND_BACK,
    Mode.TELEOP: OperatorEvent.TAKEOVER,
    Mode.PAUSED: OperatorEvent.PAUSE,
    Mode.ESTOP: OperatorEvent.ESTOP,
}
"""The operator event that moves the arbiter into each mode."""


@dataclass(frozen=True)
class SessionResult:
    """Whether an operator request was carried out, why, and the records to publish (in order)."""

    accepted: bool
    message: str
    records: tuple[Record, ...] = ()


@dataclass(frozen=True)
class EpisodeTemplate:
    """The facts every new episode of this robot starts with."""

    robot_id: str
    task: str
    instruction: str = ""


class InterventionSession:
    """Routes control steps and operator events to the arbiter, the labeller and the episode stats."""

    def __init__(
        self,
        arbiter: Arbiter,
        labeler: EpisodeLabeler,
        template: EpisodeTemplate,
        teleop_source: str,
        auto_start: bool = True,
    ) -> None:
        self.arbiter = arbiter
        self.labeler = labeler
        self.template = template
        self.teleop_source = teleop_source
        self.auto_start = auto_start
        self.policy_version = ""
        self.stats: InterventionStats | None = None
        self.closed_stats: InterventionStats | None = None
        self._counter = 0

    def start_episode(self, stamp_ns: int, episode_id: str = "") -> SessionResult:
        """Open a new episode (id generated when empty); refused while one is open."""
        try:
            record = self._start(stamp_ns, episode_id)
        except EpisodeStateError as error:
            return SessionResult(False, str(error))
        return SessionResult(True, f"episode {record.info.episode_id} started", (record,))

    def step(self, step_input: StepInput) -> StepOutput:
        """Run the arbiter for one control step and count it in the open episode's stats."""
        output = self.arbiter.step(step_input)
        if self.stats is not None:
            self.stats.update(output)
        return output

    def handle(self, event: OperatorEvent, source: str, stamp_ns: int) -> SessionResult:
        """Carry out an operator event from ``source`` (e.g. operator/joy, operator/keyboard)."""
        if event in ARBITER_EVENTS:
            result = self.arbiter.handle(event, self.teleop_source)
            return SessionResult(result.accepted, result.message)
        if event in (OperatorEvent.SUCCESS, OperatorEvent.FAILURE):
            return self.label_and_end(event is OperatorEvent.SUCCESS, source, stamp_ns)
        try:
            if event is OperatorEvent.RERECORD:
                record = self.labeler.rerecord(stamp_ns)
                self.stats = InterventionStats(stamp_ns)
                return SessionResult(True, f"episode {record.info.episode_id} restarted", (record,))
            record = self.labeler.discard(stamp_ns)
        except EpisodeStateError as error:
            return SessionResult(False, f"{event.value} refused: {error}")
        self.stats = None
        records: tuple[Record, ...] = (record,)
        if self.auto_start:
            records += (self._start(stamp_ns, ""),)
        return SessionResult(True, f"episode {record.info.episode_id} discarded", records)

    def label_and_end(
        self, success: bool, source: str, stamp_ns: int, note: str = "", episode_id: str = ""
    ) -> SessionResult:
        """Label the open episode (or the named one, which must be open) and end it."""
        try:
            self.labeler.set_label(success, source, stamp_ns, note=note, episode_id=episode_id)
            closure = self.labeler.end(stamp_ns)
        except (EpisodeStateError, ValueError) as error:
            return SessionResult(False, f"label refused: {error}")
        return self._closed(closure.label, closure.event, stamp_ns)

    def end_with_ground_truth(self, success: bool, stamp_ns: int) -> SessionResult:
        """End an auto-labelled episode; an operator label given earlier wins over the ground truth."""
        try:
            closure = self.labeler.end(stamp_ns, ground_truth_success=success)
        except EpisodeStateError as error:
            return SessionResult(False, f"end refused: {error}")
        return self._closed(closure.label, closure.event, stamp_ns)

    def set_mode(self, mode: int, reset_estop: bool = False) -> SessionResult:
        """Move the arbiter to ``mode`` (a ``Mode`` value) as the matching operator event would; resetting a
        latched e-stop first when asked. Accepted when the arbiter ends in ``mode``."""
        arbiter = self.arbiter
        messages = []
        if reset_estop and arbiter.mode is Mode.ESTOP:
            messages.append(arbiter.reset_estop().message)
        try:
            target = Mode(mode)
        except ValueError:
            return SessionResult(False, f"unknown mode {mode}; valid modes: {[int(m) for m in Mode]}")
        if arbiter.mode is not target:
            messages.append(arbiter.handle(MODE_EVENTS[target], self.teleop_source).message)
        return SessionResult(arbiter.mode is target, "; ".join(messages) or f"already in {target.name}")

    def _closed(self, label: RewardLabelRecord, event: EpisodeEventRecord, stamp_ns: int) -> SessionResult:
        self.closed_stats, self.stats = self.stats, None
        records: tuple[Record, ...] = (label, event)
        if self.auto_start:
            records += (self._start(stamp_ns, ""),)
        return SessionResult(True, f"episode {label.episode_id} ended: {label.outcome}", records)

    def _start(self, stamp_ns: int, episode_id: str) -> EpisodeEventRecord:
        self._counter += 1
        info = EpisodeInfo(
            episode_id=episode_id or new_episode_id(self.template.robot_id, stamp_ns, self._counter),
            robot_id=self.template.robot_id,
            task=self.template.task,
            instruction=self.template.instruction,
            policy_version=self.policy_version,
        )
        record = self.labeler.start(info, stamp_ns)
        self.stats = InterventionStats(stamp_ns)
        return record

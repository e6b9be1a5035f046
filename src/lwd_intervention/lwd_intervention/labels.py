"""Episode lifecycle and reward labels: the operator's success/failure judgement becomes the reward.

An :class:`EpisodeLabeler` follows one robot's episodes. It turns start, label,
end, rerecord and discard requests into the records that the node publishes as
``lwd_msgs/EpisodeEvent`` and ``lwd_msgs/RewardLabel`` and that the recorder stores.
An episode cannot end without a label, unless the labeller is configured as
auto-labelled (the simulator's ground truth), so no bag is ever closed with an unknown outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import IntEnum

SOURCE_SIM_GROUND_TRUTH = "sim/ground_truth"


class EpisodeEventKind(IntEnum):
    """Values match ``lwd_msgs/msg/EpisodeEvent`` ``EVENT_*``."""

    START = 0
    END = 1
    DISCARD = 2
    RERECORD = 3


class EpisodeStateError(RuntimeError):
    """The request does not fit the episode's state (none open, one already open, wrong id)."""


class UnlabelledEpisodeError(EpisodeStateError):
    """An episode was to be closed without a success/failure label."""


@dataclass(frozen=True)
class EpisodeInfo:
    """What identifies an episode and what ran in it."""

    episode_id: str
    robot_id: str
    task: str
    instruction: str
    policy_version: str = ""


@dataclass(frozen=True)
class EpisodeEventRecord:
    """One lifecycle event, ready to publish as ``EpisodeEvent``."""

    kind: EpisodeEventKind
    stamp_ns: int
    info: EpisodeInfo


@dataclass(frozen=True)
class RewardLabelRecord:
    """An episode's outcome label, ready to publish as ``RewardLabel``."""

    episode_id: str
    success: bool
    source: str
    stamp_ns: int
    note: str = ""

    @property
    def reward(self) -> float:
        """The sparse reward: 1.0 on success, 0.0 on failure."""
        return 1.0 if self.success else 0.0

    @property
    def terminal(self) -> bool:
        """The episode ended in a terminal state: here, exactly on success.

        A failure labelled here is a cut: the simulator's step limit ran out, or the operator stopped the robot
        in a state the task could have gone on from, so the learner bootstraps a value there. No task of ours
        has a terminal failure; a labeller that knows one publishes ``RewardLabel.terminal`` true on a failure,
        and the recorder keeps that flag (``lwd.terminal``).
        """
        return self.success

    @property
    def outcome(self) -> str:
        """The bag's ``lwd.outcome`` value."""
        return "success" if self.success else "failure"


@dataclass(frozen=True)
class EpisodeClosure:
    """What ending an episode produces: the END event and the label that goes with it."""

    event: EpisodeEventRecord
    label: RewardLabelRecord


class EpisodeLabeler:
    """Tracks the open episode and its label; refuses to end an unlabelled episode."""

    def __init__(self, auto_label: bool = False) -> None:
        self.auto_label = auto_label
        self._episode: EpisodeInfo | None = None
        self._label: RewardLabelRecord | None = None

    @property
    def episode(self) -> EpisodeInfo | None:
        """The open episode, or None."""
        return self._episode

    @property
    def label(self) -> RewardLabelRecord | None:
        """The label given to the open episode so far, or None."""
        return self._label

    def start(self, info: EpisodeInfo, stamp_ns: int) -> EpisodeEventRecord:
        """Open a new episode; an open one must be ended or discarded first."""
        if not info.episode_id:
            raise EpisodeStateError("cannot start an episode with an empty episode_id")
        if self._episode is not None:
            raise EpisodeStateError(
                f"episode {self._episode.episode_id!r} is still open; end or discard it before starting "
                f"{info.episode_id!r}"
            )
        self._episode = info
        self._label = None
        return EpisodeEventRecord(EpisodeEventKind.START, stamp_ns, info)

    def set_label(
        self, success: bool, source: str, stamp_ns: int, note: str = "", episode_id: str = ""
    ) -> RewardLabelRecord:
        """Label the open episode (``episode_id`` empty = the open one); a later label replaces an earlier one."""
        episode = self._require_open("label")
        if episode_id and episode_id != episode.episode_id:
            raise EpisodeStateError(f"episode {episode_id!r} is not open (the open episode is {episode.episode_id!r})")
        if not source:
            raise ValueError("a label needs a source, e.g. operator/joy, operator/keyboard, sim/ground_truth")
        self._label = RewardLabelRecord(
            episode_id=episode.episode_id, success=bool(success), source=source, stamp_ns=stamp_ns, note=note
        )
        return self._label

    def end(self, stamp_ns: int, ground_truth_success: bool | None = None) -> EpisodeClosure:
        """Close the open episode with its label; auto-labelled episodes may use the sim's ground truth.

        Raises UnlabelledEpisodeError (the episode stays open, nothing is lost) when no label exists.
        """
        episode = self._require_open("end")
        label = self._label
        if label is None:
            if not self.auto_label:
                raise UnlabelledEpisodeError(
                    f"episode {episode.episode_id!r} has no success/failure label; label it before ending it "
                    "(or configure auto-labelling from the simulator's ground truth)"
                )
            if ground_truth_success is None:
                raise UnlabelledEpisodeError(
                    f"episode {episode.episode_id!r} is auto-labelled but no ground-truth success was given"
                )
            label = RewardLabelRecord(
                episode_id=episode.episode_id,
                success=bool(ground_truth_success),
                source=SOURCE_SIM_GROUND_TRUTH,
                stamp_ns=stamp_ns,
            )
        self._episode = None
        self._label = None
        return EpisodeClosure(EpisodeEventRecord(EpisodeEventKind.END, stamp_ns, episode), label)

    def discard(self, stamp_ns: int) -> EpisodeEventRecord:
        """Throw the open episode away; the recorder deletes its bag."""
        episode = self._require_open("discard")
        self._episode = None
        self._label = None
        return EpisodeEventRecord(EpisodeEventKind.DISCARD, stamp_ns, episode)

    def rerecord(self, stamp_ns: int) -> EpisodeEventRecord:
        """Throw the open episode's recording away and restart it; the episode stays open, unlabelled."""
        episode = self._require_open("rerecord")
        self._label = None
        return EpisodeEventRecord(EpisodeEventKind.RERECORD, stamp_ns, episode)

    def _require_open(self, action: str) -> EpisodeInfo:
        if self._episode is None:
            raise EpisodeStateError(f"cannot {action}: no episode is open")
        return self._episode


def new_episode_id(robot_id: str, stamp_ns: int, counter: int) -> str:
    """A unique, sortable episode id: ``<robot_id>-<UTC yyyymmddThhmmssZ>-<counter:04d>``."""
    if not robot_id or "/" in robot_id:
        raise ValueError(f"invalid robot_id {robot_id!r}: it must be non-empty and contain no '/'")
    moment = datetime.fromtimestamp(stamp_ns / 1e9, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{robot_id}-{moment}-{counter:04d}"

"""The facts of one episode and how they map to rosbag2 ``custom_data`` (``lwd.*`` keys, see docs/contracts.md).

``EpisodeStats`` counts steps, interventions and policy versions from the
decoded messages as they are recorded, so that a live recording and a crash
recovery derive the same facts from the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lwd_interfaces import topics
from lwd_interfaces.episodes import EPISODE_KINDS, OUTCOMES
from lwd_interfaces.intervention_counts import InterventionCounts

from lwd_logger.sample_loss import format_losses


@dataclass(frozen=True)
class EpisodeInfo:
    """What is known about an episode when it starts (from the /episode/event START message)."""

    episode_id: str
    robot_id: str
    task: str
    instruction: str = ""
    policy_version: str = ""
    episode_kind: str = "deployment"
    cameras: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse ids that cannot be folder names and unknown episode kinds."""
        for name in ("episode_id", "robot_id"):
            value = getattr(self, name)
            if not value or "/" in value or value.startswith("."):
                raise ValueError(f"invalid {name} {value!r}: must be a non-empty folder-safe name")
        if self.episode_kind not in EPISODE_KINDS:
            raise ValueError(f"episode_kind must be one of {EPISODE_KINDS}, got {self.episode_kind!r}")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able form, for the recording journal."""
        return {
            "episode_id": self.episode_id,
            "robot_id": self.robot_id,
            "task": self.task,
            "instruction": self.instruction,
            "policy_version": self.policy_version,
            "episode_kind": self.episode_kind,
            "cameras": list(self.cameras),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> EpisodeInfo:
        """Inverse of ``to_json``."""
        return cls(
            episode_id=str(body["episode_id"]),
            robot_id=str(body["robot_id"]),
            task=str(body["task"]),
            instruction=str(body.get("instruction", "")),
            policy_version=str(body.get("policy_version", "")),
            episode_kind=str(body.get("episode_kind", "deployment")),
            cameras=tuple(body.get("cameras", ())),
        )


@dataclass
class EpisodeStats:
    """Running counts over an episode's decoded messages."""

    steps: int = 0
    counts: InterventionCounts = field(default_factory=InterventionCounts)
    policy_versions: list[str] = field(default_factory=list)
    cameras: list[str] = field(default_factory=list)
    outcome: str = "incomplete"
    label_source: str = ""
    terminal: bool = False
    """The label's ``terminal`` flag: the episode ended in a terminal state, not at a cut (a time limit, a stop)."""
    lost_samples: dict[str, int] = field(default_factory=dict)
    """Samples the recorder never received, per topic (see :mod:`lwd_logger.sample_loss`)."""

    def add_policy_version(self, version: str) -> None:
        """Remember a policy version in order of first appearance."""
        if version and version not in self.policy_versions:
            self.policy_versions.append(version)

    def observe(self, topic: str, msg: Any) -> None:
        """Update the counts with one decoded message."""
        if topic == topics.EXECUTED_COMMAND:
            self.steps += 1
        elif topic == topics.INTERVENTION_STATE:
            self.counts.observe(msg.mode == msg.MODE_TELEOP, bool(msg.active))
        elif topic == topics.ACTION_CHUNK or topic == topics.POLICY_VERSION:
            version = msg.policy_version if topic == topics.ACTION_CHUNK else msg.version
            self.add_policy_version(version)
        elif topic == topics.REWARD_LABEL:
            self.set_label(bool(msg.success), msg.source, bool(msg.terminal))
        elif topic.startswith(topics.CAMERA_PREFIX + "/"):
            camera = topic.split("/")[2]
            if camera not in self.cameras:
                self.cameras.append(camera)

    def set_label(self, success: bool, source: str, terminal: bool) -> None:
        """Record the operator's (or the sim's) outcome label and whether it ended in a terminal state."""
        self.outcome = "success" if success else "failure"
        self.label_source = source
        self.terminal = terminal


TOPICS_TO_DECODE = frozenset(
    {
        topics.EXECUTED_COMMAND,
        topics.INTERVENTION_STATE,
        topics.ACTION_CHUNK,
        topics.POLICY_VERSION,
        topics.REWARD_LABEL,
    }
)
"""Topics whose content ``EpisodeStats`` reads; every other topic is counted without decoding."""


def custom_data(info: EpisodeInfo, stats: EpisodeStats, outcome: str | None = None) -> dict[str, str]:
    """The ``lwd.*`` custom_data of an episode bag, all values strings as rosbag2 requires."""
    final = outcome if outcome is not None else stats.outcome
    if final not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {final!r}")
    versions = list(stats.policy_versions)
    if info.policy_version and info.policy_version not in versions:
        versions.insert(0, info.policy_version)
    cameras = list(info.cameras) or list(stats.cameras)
    return {
        "lwd.robot_id": info.robot_id,
        "lwd.episode_id": info.episode_id,
        "lwd.task": info.task,
        "lwd.instruction": info.instruction,
        "lwd.episode_kind": info.episode_kind,
        "lwd.policy_versions": ",".join(versions),
        "lwd.outcome": final,
        "lwd.steps": str(stats.steps),
        "lwd.interventions": str(stats.counts.interventions),
        "lwd.intervention_steps": str(stats.counts.intervention_steps),
        "lwd.label_source": stats.label_source,
        "lwd.terminal": "true" if stats.terminal else "false",
        "lwd.cameras": ",".join(cameras),
        "lwd.lost_samples": format_losses(stats.lost_samples),
    }

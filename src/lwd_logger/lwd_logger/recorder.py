"""EpisodeRecorder: turns a stream of timestamped messages and episode events into one rosbag2 folder per episode.

Each episode is written into ``<spool>/.recording/<episode_id>/`` with a small
journal (``lwd_journal.json``: the episode's start facts and topic
definitions) next to the storage file. The writer is flushed every
``flush_period_s``, so after a crash everything up to the last flush can be
recovered (see ``recovery``) as an *incomplete* episode. On a clean end the
``lwd.*`` custom data goes into metadata.yaml, the manifest is written last,
and the folder is renamed to its committed name.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lwd_interfaces import topics
from lwd_interfaces.manifest import build_manifest, write_manifest
from rosbags.typesys.store import Typestore

from lwd_logger.episode_facts import TOPICS_TO_DECODE, EpisodeInfo, EpisodeStats, custom_data
from lwd_logger.errors import RecorderError
from lwd_logger.sample_loss import SampleLossCounter
from lwd_logger.spool import Spool
from lwd_logger.writer import BagWriter, TopicSpec

JOURNAL_NAME = "lwd_journal.json"
log = logging.getLogger(__name__)

EVENT_START, EVENT_END, EVENT_DISCARD, EVENT_RERECORD = 0, 1, 2, 3


def write_journal(folder: Path, info: EpisodeInfo, specs: list[TopicSpec], start_time_ns: int) -> None:
    """Atomically (re)write the recording journal of a partial episode."""
    body = {
        "episode": info.to_json(),
        "start_time_ns": start_time_ns,
        "topics": [spec.__dict__ for spec in specs],
    }
    temporary = folder / (JOURNAL_NAME + ".tmp")
    temporary.write_text(json.dumps(body, indent=1))
    os.replace(temporary, folder / JOURNAL_NAME)


def commit_folder(partial: Path, committed: Path, facts: dict[str, Any]) -> Path:
    """Write the episode manifest last, then rename the partial folder to its committed name."""
    write_manifest(partial, build_manifest(partial, "episode", facts))
    os.replace(partial, committed)
    directory = os.open(committed.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return committed


class EpisodeRecorder:
    """Records episodes into a spool through a ``BagWriter``.

    Inputs: ``record(topic, msgtype, data, receive_time_ns)`` with CDR bytes
    (ROS raw subscriptions) or a rosbags message object, and episode events
    (``start_episode``/``end_episode``/``discard_episode``/``rerecord_episode``,
    or decoded ``EpisodeEvent``/``RewardLabel`` messages via ``handle_event``/
    ``handle_reward``). Output: committed episode folders in the spool.
    """

    def __init__(
        self,
        spool: Spool,
        writer_factory: Callable[[], BagWriter],
        typestore: Typestore,
        flush_period_s: float = 1.0,
        label_timeout_s: float = 5.0,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        """Wire the spool, a factory of fresh writers (one per episode) and the typestore for decoding."""
        self.spool = spool
        self.writer_factory = writer_factory
        self.typestore = typestore
        self.flush_period_ns = int(flush_period_s * 1e9)
        self.label_timeout_ns = int(label_timeout_s * 1e9)
        self.clock_ns = clock_ns
        self.info: EpisodeInfo | None = None
        self.stats = EpisodeStats()
        self.messages_recorded = 0
        self.messages_outside_episode = 0
        self.losses = SampleLossCounter()
        self._writer: BagWriter | None = None
        self._specs: dict[str, TopicSpec] = {}
        self._start_time_ns = 0
        self._last_flush_ns = 0
        self._end_requested_ns: int | None = None

    @property
    def active(self) -> bool:
        """True while an episode is being recorded."""
        return self.info is not None

    def start_episode(self, info: EpisodeInfo) -> Path:
        """Open a new episode bag; raises SpoolFullError over quota, RecorderError if one is already open."""
        if self.info is not None:
            raise RecorderError(f"episode {self.info.episode_id} is still recording; end or discard it first")
        partial = self.spool.partial_path(info.episode_id)
        if partial.exists() or self.spool.committed_path(info.episode_id).exists():
            raise RecorderError(f"episode id {info.episode_id} already exists in spool {self.spool.root}")
        self.spool.check_quota()
        partial.parent.mkdir(exist_ok=True)
        writer = self.writer_factory()
        writer.open(partial)
        self._writer = writer
        self.info = info
        self.stats = EpisodeStats()
        self.stats.add_policy_version(info.policy_version)
        self.losses.take()  # losses before the episode are not the episode's
        self._specs = {}
        self._start_time_ns = time.time_ns()
        self._last_flush_ns = self.clock_ns()
        self._end_requested_ns = None
        write_journal(partial, info, [], self._start_time_ns)
        log.info("episode %s started (robot %s, task %s)", info.episode_id, info.robot_id, info.task)
        return partial

    def record(
        self,
        topic: str,
        msgtype: str,
        data: bytes | memoryview | Any,
        receive_time_ns: int,
        sequence: int | None = None,
    ) -> bool:
        """Write one message into the open episode; returns False (and counts it) when no episode is open.

        ``sequence`` is the publication sequence number DDS gave the sample, where the host knows it
        and the topic has a single publisher: gaps count as lost samples in the episode's metadata.
        """
        if sequence is not None:
            self.losses.observe(topic, sequence)
        if self.info is None or self._writer is None:
            self.messages_outside_episode += 1
            return False
        if topic not in self._specs:
            self._specs[topic] = self._writer.add_topic(topic, msgtype)
            write_journal(
                self.spool.partial_path(self.info.episode_id),
                self.info,
                list(self._specs.values()),
                self._start_time_ns,
            )
        elif self._specs[topic].msgtype != msgtype:
            raise RecorderError(f"topic {topic} was declared as {self._specs[topic].msgtype}, got {msgtype}")
        if isinstance(data, (bytes, bytearray, memoryview)):
            raw = data
            if topic in TOPICS_TO_DECODE:
                self.stats.observe(topic, self.typestore.deserialize_cdr(bytes(raw), msgtype))
        else:
            raw = self.typestore.serialize_cdr(data, msgtype)
            if topic in TOPICS_TO_DECODE:
                self.stats.observe(topic, data)
        if topic.startswith(topics.CAMERA_PREFIX + "/"):
            self.stats.observe(topic, None)
        self._writer.write(topic, raw, receive_time_ns)
        self.messages_recorded += 1
        now = self.clock_ns()
        if now - self._last_flush_ns >= self.flush_period_ns:
            self._writer.flush()
            self._last_flush_ns = now
        return True

    def flush(self) -> None:
        """Flush the open episode now (the recorder also flushes every ``flush_period_s``)."""
        if self._writer is None:
            raise RecorderError("flush requested but no episode is open")
        self._writer.flush()
        self._last_flush_ns = self.clock_ns()

    def set_label(self, success: bool, source: str) -> None:
        """Label the open episode's outcome; commits it if its end was already requested."""
        if self.info is None:
            raise RecorderError("a reward label arrived but no episode is open")
        self.stats.set_label(success, source)
        if self._end_requested_ns is not None:
            self.end_episode()

    def request_end(self) -> Path | None:
        """End now if labelled; otherwise wait up to ``label_timeout_s`` for a label (see ``tick``)."""
        if self.info is None:
            raise RecorderError("an end event arrived but no episode is open")
        if self.stats.outcome != "incomplete":
            return self.end_episode()
        self._end_requested_ns = self.clock_ns()
        return None

    def tick(self) -> Path | None:
        """Commit an ended episode whose label never came (as incomplete) once the label timeout passes."""
        if self._end_requested_ns is not None and self.clock_ns() - self._end_requested_ns >= self.label_timeout_ns:
            log.warning("episode %s ended without a reward label: committed as incomplete", self.info.episode_id)
            return self.end_episode()
        return None

    def end_episode(self, outcome: str | None = None) -> Path:
        """Close the bag with its custom data, write the manifest last and commit the folder."""
        if self.info is None or self._writer is None:
            raise RecorderError("end_episode called but no episode is open")
        info, writer = self.info, self._writer
        self.stats.lost_samples = self.losses.take()
        data = custom_data(info, self.stats, outcome)
        partial = self.spool.partial_path(info.episode_id)
        writer.close(data)
        (partial / JOURNAL_NAME).unlink()
        facts = {**data, "lwd.start_time_ns": str(self._start_time_ns)}
        committed = commit_folder(partial, self.spool.committed_path(info.episode_id), facts)
        self._reset()
        log.info(
            "episode %s committed: outcome %s, %s steps, lost samples: %s",
            info.episode_id,
            data["lwd.outcome"],
            data["lwd.steps"],
            data["lwd.lost_samples"] or "none",
        )
        return committed

    def discard_episode(self) -> EpisodeInfo:
        """Throw the open episode away; returns its start facts."""
        if self.info is None or self._writer is None:
            raise RecorderError("discard requested but no episode is open")
        info = self.info
        self._writer.abort()
        shutil.rmtree(self.spool.partial_path(info.episode_id))
        self._reset()
        log.info("episode %s discarded", info.episode_id)
        return info

    def rerecord_episode(self) -> Path:
        """Throw the open episode away and start it again with the same facts."""
        return self.start_episode(self.discard_episode())

    def record_event(
        self,
        event: Any,
        data: bytes | Any,
        receive_time_ns: int,
        cameras: tuple[str, ...] = (),
        episode_kind: str = "deployment",
    ) -> Path | None:
        """Record an ``EpisodeEvent`` (``data``: its CDR bytes or message) in its episode and act on it.

        A START is recorded after it opens the episode, so every bag begins with it; any other event
        is recorded before it ends the episode it belongs to. Returns what ``handle_event`` returns.
        """
        msgtype = topics.TOPIC_TYPES[topics.EPISODE_EVENT]
        if event.event == EVENT_START:
            folder = self.handle_event(event, cameras, episode_kind)
            self.record(topics.EPISODE_EVENT, msgtype, data, receive_time_ns)
            return folder
        self.record(topics.EPISODE_EVENT, msgtype, data, receive_time_ns)
        return self.handle_event(event, cameras, episode_kind)

    def record_reward(self, label: Any, data: bytes | Any, receive_time_ns: int) -> Path | None:
        """Record a ``RewardLabel`` (CDR bytes or message) in its episode and apply it; the folder if it committed."""
        self.record(topics.REWARD_LABEL, topics.TOPIC_TYPES[topics.REWARD_LABEL], data, receive_time_ns)
        return self.handle_reward(label)

    def handle_event(self, event: Any, cameras: tuple[str, ...] = (), episode_kind: str = "deployment") -> Path | None:
        """React to a decoded ``lwd_msgs/msg/EpisodeEvent``; returns the folder started or committed, if any."""
        if event.event == EVENT_START:
            info = EpisodeInfo(
                episode_id=event.episode_id,
                robot_id=event.robot_id,
                task=event.task,
                instruction=event.instruction,
                policy_version=event.policy_version,
                episode_kind=episode_kind,
                cameras=cameras,
            )
            return self.start_episode(info)
        if event.event == EVENT_END:
            return self.request_end()
        if event.event == EVENT_DISCARD:
            self.discard_episode()
            return None
        if event.event == EVENT_RERECORD:
            return self.rerecord_episode()
        raise RecorderError(f"unknown episode event {event.event}")

    def handle_reward(self, label: Any) -> Path | None:
        """React to a decoded ``lwd_msgs/msg/RewardLabel`` for the open episode (others are ignored with a warning)."""
        if self.info is None or label.episode_id != self.info.episode_id:
            log.warning("reward label for episode %r ignored: it is not the open episode", label.episode_id)
            return None
        ended = self._end_requested_ns is not None
        self.set_label(bool(label.success), label.source)
        return self.spool.committed_path(label.episode_id) if ended else None

    def _reset(self) -> None:
        self.info = None
        self._writer = None
        self._specs = {}
        self._end_requested_ns = None

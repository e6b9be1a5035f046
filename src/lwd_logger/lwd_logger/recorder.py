"""EpisodeRecorder: turns a stream of timestamped messages and episode events into one rosbag2 folder per episode.

Each episode is written into ``<spool>/.recording/<episode_id>/`` with a small
journal (``lwd_journal.json``: the episode's start facts and topic
definitions) next to the storage file. The writer is flushed every
``flush_period_s``, so after a crash everything up to the last flush can be
recovered (see ``recovery``) as an *incomplete* episode. On a clean end the
``lwd.*`` custom data goes into metadata.yaml, the manifest is written last
(with the storage file's sha256 as the writer computed it while writing, so
the bag is not read again), and the folder is renamed to its committed name.

A write that fails (``ENOSPC`` on a full disk, any ``OSError`` while writing,
flushing or closing) never leaves the recorder wedged: the episode is closed
at once and its flushed part committed as incomplete by the same recovery a
crash gets, the failure is logged at ERROR and kept in ``failure`` for the
host to report, and ``RecordingFailedError`` is raised. After a full disk, new
episodes are refused (``SpoolFullError``) until the disk has
``RESUME_MARGIN_BYTES`` more free than when it filled; the next start after
that succeeds without a restart.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwd_interfaces import topics
from rosbags.typesys.store import Typestore

from lwd_logger.episode_facts import TOPICS_TO_DECODE, EpisodeInfo, EpisodeStats, custom_data
from lwd_logger.errors import BagError, RecorderError, RecordingFailedError
from lwd_logger.recovery import recover_partial
from lwd_logger.sample_loss import SampleLossCounter
from lwd_logger.spool import JOURNAL_NAME, Spool, commit_folder
from lwd_logger.writer import BagWriter, TopicSpec

RESUME_MARGIN_BYTES = 64 * 2**20
"""After a full disk, new episodes wait until this much more is free than when the write failed."""
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


@dataclass(frozen=True)
class RecordingFailure:
    """The last failed write: which episode, the error, and where its flushed part was committed (None: not yet)."""

    episode_id: str
    error: str
    errno: int | None
    folder: Path | None


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
        self.failure: RecordingFailure | None = None
        self._free_floor = 0
        self._unrecovered: list[Path] = []

    @property
    def active(self) -> bool:
        """True while an episode is being recorded."""
        return self.info is not None

    def start_episode(self, info: EpisodeInfo) -> Path:
        """Open a new episode bag; raises SpoolFullError over quota, RecorderError if one is already open.

        RecordingFailedError when the bag cannot be created (its empty folder is removed).
        """
        if self.info is not None:
            raise RecorderError(f"episode {self.info.episode_id} is still recording; end or discard it first")
        partial = self.spool.partial_path(info.episode_id)
        if partial.exists() or self.spool.committed_path(info.episode_id).exists():
            raise RecorderError(f"episode id {info.episode_id} already exists in spool {self.spool.root}")
        self.spool.check_quota(self._free_floor)
        pending, self._unrecovered = self._unrecovered, []
        for folder in pending:
            self._recover(folder)
        start_time_ns = time.time_ns()
        writer = self.writer_factory()
        try:
            partial.parent.mkdir(exist_ok=True)
            writer.open(partial)
            write_journal(partial, info, [], start_time_ns)
        except OSError as error:
            with contextlib.suppress(OSError):
                writer.abort()
            shutil.rmtree(partial, ignore_errors=True)
            raise self._report(info.episode_id, error, None, "nothing was recorded") from error
        self._writer = writer
        self.info = info
        self.stats = EpisodeStats()
        self.stats.add_policy_version(info.policy_version)
        self.losses.take()  # losses before the episode are not the episode's
        self._specs = {}
        self._start_time_ns = start_time_ns
        self._last_flush_ns = self.clock_ns()
        self._end_requested_ns = None
        self.failure = None
        self._free_floor = 0
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

        ``sequence`` is the publication sequence number DDS gave the sample, where the host knows it: gaps
        count as lost samples in the episode's metadata, on topics with one publisher (``losses``).
        """
        if sequence is not None:
            self.losses.observe(topic, sequence)
        if self.info is None or self._writer is None:
            self.messages_outside_episode += 1
            return False
        if topic in self._specs and self._specs[topic].msgtype != msgtype:
            raise RecorderError(f"topic {topic} was declared as {self._specs[topic].msgtype}, got {msgtype}")
        try:
            self._write(topic, msgtype, data, receive_time_ns)
        except OSError as error:
            raise self._fail(error) from error
        return True

    def _write(self, topic: str, msgtype: str, data: bytes | memoryview | Any, receive_time_ns: int) -> None:
        """Declare the topic on first use, observe what the episode facts need, write, and flush when due."""
        if topic not in self._specs:
            self._specs[topic] = self._writer.add_topic(topic, msgtype)
            write_journal(
                self.spool.partial_path(self.info.episode_id),
                self.info,
                list(self._specs.values()),
                self._start_time_ns,
            )
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

    def flush(self) -> None:
        """Flush the open episode now (the recorder also flushes every ``flush_period_s``)."""
        if self._writer is None:
            raise RecorderError("flush requested but no episode is open")
        try:
            self._writer.flush()
        except OSError as error:
            raise self._fail(error) from error
        self._last_flush_ns = self.clock_ns()

    def set_label(self, success: bool, source: str, terminal: bool) -> None:
        """Label the open episode's outcome (``terminal``: not a time-limit cut); commits it if its end was already
        requested."""
        if self.info is None:
            raise RecorderError("a reward label arrived but no episode is open")
        self.stats.set_label(success, source, terminal)
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
        """Close the bag with its custom data, write the manifest last and commit the folder.

        RecordingFailedError when that fails: the episode is then committed as incomplete from its flushed part.
        """
        if self.info is None or self._writer is None:
            raise RecorderError("end_episode called but no episode is open")
        info, writer = self.info, self._writer
        self.stats.lost_samples = self.losses.take()
        data = custom_data(info, self.stats, outcome)
        partial = self.spool.partial_path(info.episode_id)
        try:
            writer.close(data)
            (partial / JOURNAL_NAME).unlink()
            facts = {**data, "lwd.start_time_ns": str(self._start_time_ns)}
            hashed = writer.hashed_files()
            committed = commit_folder(partial, self.spool.committed_path(info.episode_id), facts, hashed)
        except OSError as error:
            raise self._fail(error) from error
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
        self.set_label(bool(label.success), label.source, bool(label.terminal))
        return self.spool.committed_path(label.episode_id) if ended else None

    def _fail(self, error: OSError) -> RecordingFailedError:
        """Close the open episode after a failed write: commit its flushed part as incomplete, report the failure."""
        info, writer = self.info, self._writer
        self._reset()
        with contextlib.suppress(OSError):
            writer.abort()
        folder = self._recover(self.spool.partial_path(info.episode_id))
        kept = f"its flushed part is committed as {folder}" if folder else "its flushed part waits for recovery"
        return self._report(info.episode_id, error, folder, kept)

    def _recover(self, partial: Path) -> Path | None:
        """Commit a failed episode's partial folder as incomplete; None (kept for a later try) when that fails too."""
        committed = self.spool.committed_path(partial.name)
        if not partial.exists() and committed.exists():
            return committed  # the write that failed came after the commit
        try:
            return recover_partial(self.spool, partial, self.typestore)
        except OSError as error:
            log.error("episode %s not recovered yet (%s): retried when the next episode starts", partial.name, error)
            self._unrecovered.append(partial)
        except BagError as error:
            log.error("episode %s cannot be recovered: %s", partial.name, error)
        return None

    def _report(self, episode_id: str, error: OSError, folder: Path | None, kept: str) -> RecordingFailedError:
        """Log the failure at ERROR, keep it in ``failure``, and raise the free-disk floor after a full disk."""
        self.failure = RecordingFailure(episode_id, str(error), error.errno, folder)
        message = f"RECORDING FAILED: episode {episode_id} closed as incomplete ({error}); {kept}"
        if error.errno == errno.ENOSPC:
            self._free_floor = self.spool.free_bytes() + RESUME_MARGIN_BYTES
            message += f"; no new episode starts until {self._free_floor} bytes are free"
        log.error(message)
        return RecordingFailedError(message)

    def _reset(self) -> None:
        self.info = None
        self._writer = None
        self._specs = {}
        self._end_requested_ns = None

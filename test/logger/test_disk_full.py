"""A disk that fills mid-episode: the recorder closes the episode as incomplete, keeps what was flushed, refuses
new episodes while the disk is full and resumes on its own once space returns.

The disk is the one stand-in: ``SmallDisk`` hands out a byte budget that the writer spends (a real
``RosbagsWriter`` underneath, which raises ``ENOSPC`` once the budget is gone) and that the spool's free-space
check reads. Everything else (recorder, spool, recovery, the bag files) is real.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest
from lwd_interfaces import lwd_typestore, topics
from lwd_interfaces.manifest import verify_folder
from lwd_logger.bag_reader import BagReader
from lwd_logger.episode_facts import EpisodeInfo
from lwd_logger.errors import RecordingFailedError, SpoolFullError
from lwd_logger.recorder import RESUME_MARGIN_BYTES, EpisodeRecorder
from lwd_logger.spool import Spool
from lwd_logger.writer import RosbagsWriter, TopicSpec


class SmallDisk:
    """A disk with ``free`` bytes left: writes spend them, and the bridge gives them back (``free_up``)."""

    def __init__(self, free: int) -> None:
        self.free = free

    def spend(self, size: int) -> None:
        if size > self.free:
            self.free = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.free -= size

    def free_up(self, size: int) -> None:
        self.free += size


class FillingWriter:
    """A real ``RosbagsWriter`` whose writes, flushes and close raise ENOSPC once the disk has no bytes left."""

    def __init__(self, disk: SmallDisk, store) -> None:
        self.disk = disk
        self.inner = RosbagsWriter(store)
        self.full = False

    def _check(self, size: int) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        try:
            self.disk.spend(size)
        except OSError:
            self.full = True
            raise

    def open(self, path: Path) -> None:
        self.inner.open(path)

    def add_topic(self, topic: str, msgtype: str, msgdef: str | None = None, rihs01: str | None = None) -> TopicSpec:
        return self.inner.add_topic(topic, msgtype, msgdef, rihs01)

    def write(self, topic: str, data, log_time_ns: int) -> None:
        self._check(len(data))
        self.inner.write(topic, data, log_time_ns)

    def flush(self) -> None:
        self._check(0)
        self.inner.flush()

    def close(self, custom_data: dict[str, str]) -> None:
        self._check(1)  # the summary and metadata.yaml take bytes too
        self.inner.close(custom_data)

    def abort(self) -> None:
        self.inner.abort()

    def hashed_files(self):
        return self.inner.hashed_files()


class DiskSpool(Spool):
    """The real spool, whose free-space check reads the small disk."""

    def __init__(self, root: Path, disk: SmallDisk, min_free_bytes: int) -> None:
        super().__init__(root, min_free_bytes=min_free_bytes)
        self.disk = disk

    def free_bytes(self) -> int:
        return self.disk.free


@pytest.fixture
def disk() -> SmallDisk:
    return SmallDisk(free=60_000)  # about five steps with their camera image


@pytest.fixture
def full_recorder(tmp_path, disk) -> EpisodeRecorder:
    store = lwd_typestore()
    spool = DiskSpool(tmp_path / "spool", disk, min_free_bytes=100)
    return EpisodeRecorder(spool, lambda: FillingWriter(disk, store), store, flush_period_s=3600.0)


def record_until_full(recorder: EpisodeRecorder, steps, flushed_steps: int) -> int:
    """Record steps, flushing after ``flushed_steps``, until the disk fills; returns the step that failed."""
    for i in range(1000):
        for topic, msgtype, msg in steps.step(i):
            try:
                recorder.record(topic, msgtype, msg, i + 1)
            except RecordingFailedError:
                return i
        if i + 1 == flushed_steps:
            recorder.flush()
    raise AssertionError("the disk never filled")


def info(episode_id: str) -> EpisodeInfo:
    return EpisodeInfo(episode_id=episode_id, robot_id="robot7", task="transfer_cube", cameras=("top",))


def test_disk_full_mid_episode_closes_it_as_incomplete_keeping_the_flushed_steps(full_recorder, steps, caplog):
    full_recorder.start_episode(info("ep3"))
    failed_at = record_until_full(full_recorder, steps, flushed_steps=3)
    assert failed_at > 3
    assert not full_recorder.active
    assert "RECORDING FAILED" in caplog.text
    assert any(r.levelno == logging.ERROR and "ep3" in r.getMessage() for r in caplog.records)
    failure = full_recorder.failure
    assert failure.episode_id == "ep3" and failure.errno == errno.ENOSPC
    folder = full_recorder.spool.committed_path("ep3")
    assert failure.folder == folder
    manifest = verify_folder(folder, kind="episode")
    assert manifest.facts["lwd.outcome"] == "incomplete"
    assert manifest.facts["lwd.steps"] == "3"
    assert [m.log_time_ns for m in BagReader(folder).messages([topics.EXECUTED_COMMAND])] == [1, 2, 3]
    assert full_recorder.spool.partials() == []


def test_new_episodes_are_refused_while_the_disk_is_full_and_accepted_once_space_returns(full_recorder, steps, disk):
    full_recorder.start_episode(info("ep3"))
    record_until_full(full_recorder, steps, flushed_steps=2)
    with pytest.raises(SpoolFullError, match="SPOOL FULL"):
        full_recorder.start_episode(info("ep4"))
    assert not full_recorder.active
    disk.free_up(RESUME_MARGIN_BYTES // 2)
    with pytest.raises(SpoolFullError, match="SPOOL FULL"):
        full_recorder.start_episode(info("ep4"))
    disk.free_up(RESUME_MARGIN_BYTES)  # the bridge uploaded and freed committed episodes
    full_recorder.start_episode(info("ep4"))
    for topic, msgtype, msg in steps.step(0):
        full_recorder.record(topic, msgtype, msg, 1)
    full_recorder.set_label(True, "operator/joy", True)
    folder = full_recorder.end_episode()
    assert BagReader(folder).info.custom_data["lwd.outcome"] == "success"
    assert full_recorder.failure is None


def test_disk_full_at_the_end_of_an_episode_commits_it_as_incomplete(full_recorder, steps, disk):
    full_recorder.start_episode(info("ep5"))
    for i in range(2):
        for topic, msgtype, msg in steps.step(i):
            full_recorder.record(topic, msgtype, msg, i + 1)
    full_recorder.flush()
    disk.free = 0
    full_recorder.set_label(True, "operator/joy", True)
    with pytest.raises(RecordingFailedError, match="ep5"):
        full_recorder.end_episode()
    assert not full_recorder.active
    folder = full_recorder.spool.committed_path("ep5")
    assert BagReader(folder).info.custom_data["lwd.outcome"] == "incomplete"
    assert BagReader(folder).info.custom_data["lwd.steps"] == "2"


def test_an_episode_whose_recovery_also_fails_is_recovered_when_space_returns(full_recorder, steps, disk, monkeypatch):
    full_recorder.start_episode(info("ep6"))
    original = RosbagsWriter.close

    def close_on_full_disk(self, custom_data):
        if disk.free < 100:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, custom_data)

    monkeypatch.setattr(RosbagsWriter, "close", close_on_full_disk)  # recovery's own writer: the disk is full
    record_until_full(full_recorder, steps, flushed_steps=2)
    assert full_recorder.failure.folder is None
    assert [p.name for p in full_recorder.spool.partials()] == ["ep6"]
    disk.free_up(2 * RESUME_MARGIN_BYTES)
    full_recorder.start_episode(info("ep7"))
    folder = full_recorder.spool.committed_path("ep6")
    assert BagReader(folder).info.custom_data["lwd.outcome"] == "incomplete"
    assert BagReader(folder).info.custom_data["lwd.steps"] == "2"
    assert [p.name for p in full_recorder.spool.partials()] == ["ep7"]


def test_the_recorder_node_keeps_every_disk_full_error_inside_its_callbacks(tmp_path, steps, disk):
    rclpy = pytest.importorskip("rclpy")
    from lwd_logger.recorder_node import RecorderNode

    rclpy.init()
    try:
        node = RecorderNode()
        node.parameters.update(spool_dir=str(tmp_path / "spool"), min_free_bytes=0, writer_backend="rosbags")
        assert node.on_configure(None).name == "SUCCESS"
        store = node.typestore
        spool = DiskSpool(tmp_path / "spool", disk, min_free_bytes=0)
        node.recorder = EpisodeRecorder(spool, lambda: FillingWriter(disk, store), store, label_timeout_s=0.0)

        def event(kind: int, episode_id: str) -> bytes:
            message = steps.event(1, kind, episode_id)
            return bytes(store.serialize_cdr(message, topics.TOPIC_TYPES[topics.EPISODE_EVENT]))

        node._on_event(event(0, "ep3"))
        for i in range(10):  # the disk fills on the sixth step: no error leaves the callback
            for topic, msgtype, msg in steps.step(i):
                node._record(topic, msgtype, bytes(store.serialize_cdr(msg, msgtype)), {})
        assert not node.recorder.active and node.recorder.failure.episode_id == "ep3"
        assert BagReader(spool.committed_path("ep3")).info.custom_data["lwd.outcome"] == "incomplete"
        node._on_event(event(0, "ep4"))  # refused and logged: the disk is still full
        assert not node.recorder.active
        disk.free_up(2 * RESUME_MARGIN_BYTES)
        node._on_event(event(0, "ep5"))
        assert node.recorder.active and node.recorder.info.episode_id == "ep5"
        disk.free = 0  # full again as the episode ends unlabelled: tick and shutdown stay quiet
        node._on_event(event(1, "ep5"))
        node._on_tick()
        assert not node.recorder.active
        node._stop_recording()
        node.destroy_node()
    finally:
        rclpy.shutdown()

"""BagBridge over a FleetStore: layout, idempotent resumable upload, verification before deleting and
checksum mismatches on every backend (file://, a real SFTP server, a real S3 API); backoff on an unreachable
store and what is never deleted on file://."""

from __future__ import annotations

import datetime
import json
import os

import pytest
from lwd_fleet.errors import StoreError, StoreUnavailableError
from lwd_fleet.store import FleetStore
from lwd_interfaces.manifest import MANIFEST_NAME, Manifest, verify_folder
from lwd_logger.bag_reader import BagReader
from lwd_logger.bridge import BagBridge
from lwd_logger.episode_facts import EpisodeInfo

from lwd_fleet import store as store_module


def expected_key(folder) -> str:
    manifest = verify_folder(folder)
    day = datetime.datetime.fromtimestamp(
        int(manifest.facts["lwd.start_time_ns"]) / 1e9, tz=datetime.timezone.utc
    ).strftime("%Y-%m-%d")
    return f"episodes/robot7/{day}/ep1"


def test_upload_places_episode_verifies_and_frees_spool(store_backend, record_episode, spool, tmp_path):
    folder = record_episode(n=5)
    key = expected_key(folder)
    digest = verify_folder(folder).digest
    store = FleetStore(store_backend.url)
    (result,) = BagBridge(spool, store).upload_pending()
    assert result.key == key
    assert result.sha256 == digest
    assert not folder.exists()
    assert Manifest.from_json(store.read_bytes(f"{key}/{MANIFEST_NAME}")).digest == digest
    remote = store_backend.download(key, tmp_path / "remote")
    assert verify_folder(remote, kind="episode").digest == digest
    assert BagReader(remote).info.custom_data["lwd.outcome"] == "success"
    assert BagBridge(spool, store).upload_pending() == []


def test_reupload_is_idempotent_and_resumes_partial_files(store_backend, record_episode, spool, tmp_path):
    folder = record_episode(n=20)
    key = expected_key(folder)
    bag = (folder / "ep1.mcap").read_bytes()
    store_backend.put(f"{key}/metadata.yaml", (folder / "metadata.yaml").read_bytes())
    store_backend.put(f"{key}/ep1.mcap", bag[: len(bag) // 3])
    (result,) = BagBridge(spool, FleetStore(store_backend.url)).upload_pending()
    assert result.files_skipped == 1
    assert result.bytes_sent == len(bag) - len(bag) // 3
    verify_folder(store_backend.download(key, tmp_path / "remote"), kind="episode")


def test_wrong_remote_content_is_replaced_not_trusted(store_backend, record_episode, spool, tmp_path):
    folder = record_episode(n=5)
    key = expected_key(folder)
    store_backend.put(f"{key}/ep1.mcap", b"\xff" * (folder / "ep1.mcap").stat().st_size)
    BagBridge(spool, FleetStore(store_backend.url)).upload_pending()
    verify_folder(store_backend.download(key, tmp_path / "remote"), kind="episode")


class CorruptingStore(FleetStore):
    """A remote store whose disk flips the first byte of every uploaded file (a faulty remote)."""

    def upload_file(self, local, key):
        sent = super().upload_file(local, key)
        data = bytearray(self.fs.cat_file(self.path(key)))
        data[0] ^= 0xFF
        self.fs.pipe_file(self.path(key), bytes(data))
        return sent


def flipping_copy(copy_range):
    """A local store's kernel copy that writes the first byte of every file flipped (a faulty local disk).

    A local store proves its copy while it makes it (``upload_proven``), so the flip happens as the block is
    written, before it is read back.
    """

    def copy(source, sink, start, end):
        copy_range(source, sink, start, end)
        if start == 0:
            os.pwrite(sink, bytes([os.pread(sink, 1, 0)[0] ^ 0xFF]), 0)

    return copy


def test_checksum_mismatch_on_store_keeps_local_copy_and_no_manifest(store_backend, record_episode, spool, monkeypatch):
    folder = record_episode(n=3)
    key = expected_key(folder)
    if store_backend.kind == "file":
        monkeypatch.setattr(store_module, "_copy_range", flipping_copy(store_module._copy_range))
        store = FleetStore(store_backend.url)
    else:
        store = CorruptingStore(store_backend.url)
    with pytest.raises(StoreError, match="differs after upload"):
        BagBridge(spool, store).upload_pending()
    verify_folder(folder, kind="episode")
    assert not store_backend.raw.exists(f"{key}/{MANIFEST_NAME}")


class FlakyStore(FleetStore):
    """A store that raises connection errors on its first ``failures`` size lookups."""

    def __init__(self, url, failures):
        super().__init__(url)
        self.failures = failures
        self.reconnects = 0

    def size(self, key):
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionResetError("connection reset by peer")
        return super().size(key)

    def reconnect(self):
        self.reconnects += 1
        super().reconnect()


def test_backoff_retries_with_doubling_delays(record_episode, spool, tmp_path):
    record_episode(n=2)
    delays = []
    store = FlakyStore(str(tmp_path / "fleet"), failures=3)
    (result,) = BagBridge(spool, store, base_delay_s=0.5, max_delay_s=1.5, sleep=delays.append).upload_pending()
    assert delays == [0.5, 1.0, 1.5]
    assert store.reconnects == 3
    assert result.episode_id == "ep1"


def test_unreachable_store_gives_clear_error_and_keeps_data(record_episode, spool, tmp_path):
    folder = record_episode(n=2)
    store = FlakyStore(str(tmp_path / "fleet"), failures=100)
    with pytest.raises(StoreUnavailableError, match="still failing after 3 attempts"):
        BagBridge(spool, store, max_attempts=3, sleep=lambda _: None).upload_pending()
    verify_folder(folder, kind="episode")


def test_unverifiable_local_episode_is_quarantined_and_the_others_upload(record_episode, spool, tmp_path):
    folders = {}
    for name in ("a1", "b2", "c3"):
        info = EpisodeInfo(episode_id=name, robot_id="robot7", task="transfer_cube", policy_version="v000001")
        folders[name] = record_episode(n=2, info=info)
    corrupt = folders["a1"]
    data = (corrupt / "a1.mcap").read_bytes()
    with open(corrupt / "a1.mcap", "r+b") as stream:
        stream.write(b"\xde\xad\xbe\xef")
    bridge = BagBridge(spool, FleetStore(str(tmp_path / "fleet")))
    results = bridge.upload_pending()
    assert [result.episode_id for result in results] == ["b2", "c3"]
    assert bridge.quarantined == 1
    assert not corrupt.exists()
    moved = spool.root / ".quarantine" / "a1"
    assert (moved / "a1.mcap").read_bytes()[4:] == data[4:]
    reason = json.loads((spool.root / ".quarantine" / "a1.reason.json").read_text())
    assert reason["reason"] == "checksum_mismatch" and "a1.mcap fails its sha256 check" in reason["detail"]
    assert bridge.upload_pending() == [] and bridge.quarantined == 1
    assert (moved / "a1.mcap").is_file()
    assert not list((tmp_path / "fleet" / "episodes" / "robot7").glob("*/a1"))


def test_store_outage_is_retried_never_quarantined(record_episode, spool, tmp_path):
    folder = record_episode(n=2)
    store = FlakyStore(str(tmp_path / "fleet"), failures=100)
    bridge = BagBridge(spool, store, max_attempts=2, sleep=lambda _: None)
    with pytest.raises(StoreUnavailableError):
        bridge.upload_pending()
    assert bridge.quarantined == 0 and not (spool.root / ".quarantine").exists()
    verify_folder(folder, kind="episode")

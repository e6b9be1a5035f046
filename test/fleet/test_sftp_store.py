"""The SFTP store against a real OpenSSH server: server killed mid-transfer then restarted and the upload
resumed, checksums verified (by the server's own sha256sum, no read-back); an unreachable server gives a clear
error without leaking the key path.

Uploads, resumes and channels over SFTP run with the other backends (the ``store_backend`` fixture)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from lwd_fleet.errors import StoreUnavailableError
from lwd_fleet.store import FleetStore
from lwd_interfaces import topics
from lwd_interfaces.manifest import sha256_file, verify_folder
from lwd_logger.bridge import BagBridge


def big_episode(make_recorder, steps, episode_info, megabytes):
    """An episode whose camera frames are incompressible noise, ``megabytes`` in all."""
    recorder = make_recorder()
    recorder.start_episode(episode_info)
    rng = np.random.default_rng(0)
    frame = steps.image(0, 0)
    frame.height, frame.width, frame.step = 480, 640, 640 * 3
    for i in range(megabytes * 1_000_000 // (480 * 640 * 3) + 1):
        frame.data = rng.integers(0, 256, 480 * 640 * 3, dtype=np.uint8)
        recorder.record(topics.camera_topic("top"), topics.IMAGE_TYPE, frame, i)
    recorder.set_label(True, "operator/joy", True)
    return recorder.end_episode()


def test_sftp_server_killed_mid_transfer_then_restarted_resumes(ssh_server, make_recorder, steps, episode_info, spool):
    folder = big_episode(make_recorder, steps, episode_info, megabytes=48)
    bag_size = (folder / "ep1.mcap").stat().st_size
    manifest = verify_folder(folder)
    killed = threading.Event()

    def kill_when_transfer_started() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            partial = list(ssh_server.root.rglob("ep1.mcap"))
            if partial and partial[0].stat().st_size > 2_000_000:
                ssh_server.kill()
                killed.set()
                return
            time.sleep(0.001)

    restarts = []

    def restart_server(delay: float) -> None:
        # The retries do not really sleep, so they must not outrun a kill still reaping the server's sessions.
        restarts.append(delay)
        killed.wait(60)
        if ssh_server.process is None:
            ssh_server.start()

    watcher = threading.Thread(target=kill_when_transfer_started)
    watcher.start()
    store = FleetStore(ssh_server.url)
    (result,) = BagBridge(spool, store, base_delay_s=0.1, sleep=restart_server).upload_pending()
    watcher.join()
    assert killed.is_set()
    assert restarts, "the upload must have failed and been retried"
    assert 0 < result.bytes_sent < bag_size, "the retry must resume, not start over"
    remote = ssh_server.root / result.key
    assert verify_folder(remote, kind="episode").digest == manifest.digest
    assert not folder.exists()


def test_unreachable_sftp_store_is_a_clear_error(ssh_server, record_episode, spool):
    url = ssh_server.url
    ssh_server.kill()
    with pytest.raises(StoreUnavailableError, match="cannot reach store") as error:
        FleetStore(url)
    assert str(ssh_server.key) not in str(error.value)


def test_sftp_copy_is_proven_by_the_servers_sha256sum_without_reading_it_back(ssh_server, record_episode, spool):
    record_episode(n=5)
    store = FleetStore(ssh_server.url)
    read_backs = []
    original = store.sha256
    store.sha256 = lambda key, limit=None: read_backs.append(key) or original(key, limit)
    (result,) = BagBridge(spool, store).upload_pending()
    assert store.proofs == {"server sha256sum": 2} and read_backs == []
    mcap = ssh_server.root / result.key / "ep1.mcap"
    digest = sha256_file(mcap)
    data = bytearray(mcap.read_bytes())
    data[len(data) // 2] ^= 0x01
    mcap.write_bytes(bytes(data))
    assert not store.holds(f"{result.key}/ep1.mcap", digest)
    assert read_backs == [f"{result.key}/ep1.mcap"]  # a server digest that differs is confirmed by the bytes

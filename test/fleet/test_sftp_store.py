"""The SFTP store against a real OpenSSH server: server killed mid-transfer then restarted and the upload
resumed, checksums verified (by the server's own sha256sum, no read-back); an unreachable server gives a clear
error without leaking the key path; a connection the server drops beyond its ``MaxStartups`` is tried again,
a refused login is not.

Uploads, resumes and channels over SFTP run with the other backends (the ``store_backend`` fixture)."""

from __future__ import annotations

import socket
import subprocess
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
        restarts.append(delay)
        killed.wait(timeout=60)  # the bridge sees the dropped link before kill() has reaped the server
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
    with pytest.raises(StoreUnavailableError, match=r"cannot reach store .* \(try 2 of 2\)") as error:
        FleetStore(url, connect_attempts=2, connect_delay_s=0.01)
    assert str(ssh_server.key) not in str(error.value) and "?<redacted>" in str(error.value)


def one_login_at_a_time(server) -> socket.socket:
    """Restart ``server`` with ``MaxStartups 1`` and hold its one unauthenticated slot with a silent client.

    sshd drops every further connection at once until the returned socket is closed, as it drops the
    connections beyond ``MaxStartups`` of many robots that connect at the same moment.
    """
    server.kill()
    server.config.write_text(server.config.read_text() + "MaxStartups 1\n")
    server.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # start()'s own probe holds the slot until its session process is gone
        holder = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        if holder.recv(64).startswith(b"SSH-"):  # its session process runs: the one slot is taken
            return holder
        holder.close()
        time.sleep(0.05)
    raise AssertionError("sshd kept its one unauthenticated slot taken")


def test_opening_an_sftp_store_retries_connections_the_server_drops(ssh_server):
    holder = one_login_at_a_time(ssh_server)
    with socket.create_connection(("127.0.0.1", ssh_server.port), timeout=10) as dropped:
        assert dropped.recv(64) == b"Exceeded MaxStartups\r\n"  # what a 17th robot gets: no SSH banner
    release = threading.Timer(0.3, holder.close)
    release.start()
    started = time.monotonic()
    store = FleetStore(ssh_server.url)
    release.join()
    assert time.monotonic() - started >= 0.3, "the store can only open once the slot is free"
    assert store.exists("") and store.listdir("") == []


def test_an_sftp_store_the_server_keeps_dropping_fails_after_its_attempts(ssh_server):
    holder = one_login_at_a_time(ssh_server)
    with holder, pytest.raises(StoreUnavailableError, match=r"\(try 3 of 3\): SSHException: .*banner") as error:
        FleetStore(ssh_server.url, connect_attempts=3, connect_delay_s=0.01)
    message = str(error.value)
    assert f"127.0.0.1:{ssh_server.port}{ssh_server.root}?<redacted>" in message
    assert str(ssh_server.key) not in message


def test_a_refused_sftp_login_is_not_retried(ssh_server, monkeypatch):
    stranger = ssh_server.folder / "stranger_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    tries = []
    connect = FleetStore._connect
    monkeypatch.setattr(FleetStore, "_connect", lambda self, *args: tries.append(args) or connect(self, *args))
    url = ssh_server.url.replace(str(ssh_server.key), str(stranger))
    with pytest.raises(StoreUnavailableError, match="AuthenticationException"):
        FleetStore(url, connect_delay_s=10.0)
    assert len(tries) == 1


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

"""Fixtures for the lwd_fleet tests: a real OpenSSH server for the SFTP store."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


class SshServer:
    """A real OpenSSH server (Debian openssh-server) on a loopback port, with its own keys and config."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.root = folder / "remote"
        self.root.mkdir(parents=True)
        self.key = folder / "client_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host_ed25519")], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        shutil.copy(folder / "client_ed25519.pub", folder / "authorized_keys")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.config = folder / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_ed25519'}\n"
            f"AuthorizedKeysFile {folder / 'authorized_keys'}\nSubsystem sftp internal-sftp\n"
            f"StrictModes no\nUsePAM no\nPidFile {folder / 'sshd.pid'}\nPasswordAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
        )
        self.user = getpass.getuser()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"sftp://{self.user}@127.0.0.1:{self.port}{self.root}?key_filename={self.key}"

    def start(self) -> None:
        Path("/run/sshd").mkdir(exist_ok=True)
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("sshd did not start listening")

    def kill(self) -> None:
        """SIGKILL the server and every session process it forked (found by parent pid)."""
        if self.process is None:
            return
        victims = [self.process.pid]
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        index = 0
        while index < len(victims):
            victims += children.get(victims[index], [])
            index += 1
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None


SSHD = "/usr/sbin/sshd"


@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[SshServer]:
    """A running sshd for SFTP store tests; skipped (with the reason) where openssh-server is not installed."""
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server is not installed (/usr/sbin/sshd missing): apt-get install openssh-server")
    server = SshServer(tmp_path / "ssh")
    server.start()
    yield server
    server.kill()

"""Real store servers on loopback for the store tests, and one handle on a store whatever its backend.

``SshServer`` is Debian's OpenSSH server (the ``sftp://`` store), ``S3Server`` moto's S3 API server (the
``s3://`` store; in memory, so a restart empties it). ``StoreBackend`` is a store URL with raw access to its
keys, so a test can plant or damage remote content without going through the code under test.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import posixpath
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lwd_fleet.store import FleetStore


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


class S3Server:
    """moto's S3 API server (``python -m moto.server``) on a loopback port, its log in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (on the port it had before, if any) and wait until it listens."""
        log = self.folder / "moto.log"
        with open(log, "w") as sink:
            command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            if found := re.search(r"Running on http://127\.0\.0\.1:(\d+)", log.read_text()):
                self.port = int(found.group(1))
                return
            time.sleep(0.05)
        raise RuntimeError(f"moto's S3 server did not start: {log.read_text()[-2000:]}")

    def create_bucket(self, name: str) -> None:
        """Create a bucket (moto takes unsigned requests)."""
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/{name}", method="PUT"), timeout=10).close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@dataclass
class StoreBackend:
    """A fleet store URL of one backend, with raw access to its keys for planting and reading content."""

    kind: str
    url: str
    _raw: FleetStore | None = field(default=None, repr=False)

    @property
    def raw(self) -> FleetStore:
        """One store handle for the test's own reads and writes (created on first use)."""
        if self._raw is None:
            self._raw = FleetStore(self.url)
        return self._raw

    def put(self, key: str, data: bytes) -> None:
        """Write a remote file as is (no temp file, no checks), making its folder where the backend has folders."""
        self.raw.makedirs(posixpath.dirname(key))
        self.raw.fs.pipe_file(self.raw.path(key), data)

    def get(self, key: str) -> bytes:
        return self.raw.read_bytes(key)

    def download(self, key: str, folder: Path) -> Path:
        """Copy every file below a remote folder into ``folder``; returns ``folder``."""
        for remote in self.raw.find(key):
            target = folder / remote[len(key) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            self.raw.download_file(remote, target)
        return folder

    def upload_tree(self, local: Path, key: str = "") -> None:
        """Copy a local folder's files to the store below ``key``."""
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            self.put(posixpath.join(key, path.relative_to(local).as_posix()), path.read_bytes())

"""Upload throughput: BagBridge (upload + remote proof + manifest) vs a plain copy over the same transport.

One recorded episode (3 noisy 480x640 cameras at 50 Hz) is uploaded to a file:// store on the same disk and
to an sftp:// store served by a real OpenSSH server on loopback (started here with generated keys, like the
tests do; skipped when /usr/sbin/sshd is missing). The plain copy is shutil.copyfile for file:// and
paramiko's SFTPClient.put for sftp://. "upload only" times FleetStore.upload_file over the bag's files,
without the proof the bridge adds before it may delete the local copy; "sha256" times one sha256 pass over
the bag in page cache (``sha256_file``), the least any proof that reads the copy back costs. Each of
``--repeats`` rounds runs the phases back to back on a fresh copy of the episode (made untimed), each copy
phase after an ``os.sync()`` so none pays for writing back the dirty pages of the one before it; ratios are
taken within a round, and the table shows each round's and their median, so a machine shared with other
jobs skews a round, not a ratio. The last column says how the store proved the bridge's copies
(``FleetStore.proofs``: the server's sha256sum, or a read-back).

    .venv/bin/python bench/upload.py --seconds 2 --repeats 5
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paramiko
from lwd_fleet.store import FleetStore
from lwd_interfaces import lwd_typestore, topics
from lwd_interfaces.manifest import MANIFEST_NAME, sha256_file
from lwd_logger.bridge import BagBridge
from lwd_logger.episode_facts import EpisodeInfo
from lwd_logger.recorder import EpisodeRecorder
from lwd_logger.spool import Spool
from lwd_logger.writer import RosbagsWriter

SSHD = "/usr/sbin/sshd"


def record_episode(spool: Spool, seconds: float, episode_id: str) -> Path:
    """An episode of noisy camera frames (incompressible, the worst case for transfer)."""
    store = lwd_typestore()
    types = store.types
    recorder = EpisodeRecorder(spool, lambda: RosbagsWriter(store), store)
    recorder.start_episode(EpisodeInfo(episode_id=episode_id, robot_id="bench", task="transfer_cube"))
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, 480 * 640 * 3, dtype=np.uint8) for _ in range(4)]
    for index in range(int(seconds * 50)):
        stamp = types["builtin_interfaces/msg/Time"](sec=1, nanosec=index)
        header = types["std_msgs/msg/Header"](stamp=stamp, frame_id="")
        for number, camera in enumerate(("top", "left_wrist", "right_wrist")):
            image = types["sensor_msgs/msg/Image"](
                header=header,
                height=480,
                width=640,
                encoding="rgb8",
                is_bigendian=0,
                step=1920,
                data=frames[(index + number) % 4],
            )
            recorder.record(topics.camera_topic(camera), topics.IMAGE_TYPE, image, index)
    recorder.set_label(True, "bench", True)
    return recorder.end_episode()


def start_sshd(folder: Path) -> tuple[subprocess.Popen, int, Path]:
    """An OpenSSH server on a free loopback port serving ``folder``; returns (process, port, client key)."""
    folder.mkdir(parents=True)
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    shutil.copy(folder / "client.pub", folder / "authorized_keys")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\n"
        f"Subsystem sftp internal-sftp\nStrictModes no\nUsePAM no\nPidFile {folder / 'sshd.pid'}\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stderr=subprocess.DEVNULL)
    for _ in range(200):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, port, folder / "client"
        time.sleep(0.05)
    raise RuntimeError("sshd did not start")


def measure(
    url: str, root: Path, plain_copy: Callable[[Path, str], None], seconds: float, repeats: int, work: Path
) -> list[tuple[float, float, float, float, int, str]]:
    """Per round: (plain copy s, upload-only s, sha256 s, bridge s, bytes, how the store proved its copies)."""
    recorded = Spool(work / "recorded")
    folder = record_episode(recorded, seconds, "ep1")
    files = sorted(p for p in folder.iterdir() if p.name != MANIFEST_NAME)
    size = sum(p.stat().st_size for p in files)
    rounds = []
    for number in range(repeats):
        spool = Spool(work / f"spool-{number}")
        shutil.copytree(folder, spool.root / folder.name)
        os.sync()  # each timed phase starts without the previous one's dirty pages to write back
        start = time.perf_counter()
        for path in files:
            plain_copy(path, f"plain/{path.name}")
        plain = time.perf_counter() - start
        store = FleetStore(url)
        os.sync()
        start = time.perf_counter()
        for path in files:
            store.upload_file(path, f"upload_only/{folder.name}/{path.name}")
        upload_only = time.perf_counter() - start
        start = time.perf_counter()
        for path in files:
            sha256_file(path)
        hashing = time.perf_counter() - start
        os.sync()
        start = time.perf_counter()
        BagBridge(spool, store).upload_pending()
        bridge = time.perf_counter() - start
        for leftover in ("plain", "upload_only", "episodes"):
            shutil.rmtree(root / leftover)
        shutil.rmtree(spool.root)
        proof = ", ".join(f"{how} x{n}" for how, n in sorted(store.proofs.items()))
        rounds.append((plain, upload_only, hashing, bridge, size, proof))
    shutil.rmtree(recorded.root)
    return rounds


def main() -> None:
    """Measure file:// and sftp:// and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="episode length [s of 50 Hz steps]")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of the three phases per store")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(dir=args.dir))
    rows = []
    local_root = work / "fleet"
    local_root.mkdir()

    def local_copy(path: Path, key: str) -> None:
        (local_root / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, local_root / key)

    rows.append(("file://", measure(f"file://{local_root}", local_root, local_copy, args.seconds, args.repeats, work)))
    if os.path.exists(SSHD):
        process, port, key = start_sshd(work / "ssh")
        remote_root = work / "sftp_root"
        remote_root.mkdir()
        try:
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            client.connect("127.0.0.1", port=port, username=getpass.getuser(), key_filename=str(key))
            sftp = client.open_sftp()

            def sftp_copy(path: Path, remote_key: str) -> None:
                (remote_root / remote_key).parent.mkdir(parents=True, exist_ok=True)
                sftp.put(str(path), str(remote_root / remote_key))

            url = f"sftp://{getpass.getuser()}@127.0.0.1:{port}{remote_root}?key_filename={key}"
            rows.append(("sftp:// loopback", measure(url, remote_root, sftp_copy, args.seconds, args.repeats, work)))
            client.close()
        finally:
            process.kill()
            process.wait()
    else:
        print(f"sftp row skipped: {SSHD} missing (apt-get install openssh-server)")
    print(
        f"{'store (round)':<22} {'MB':>4} {'plain MB/s':>10} {'upload MB/s':>11} {'ratio':>5} {'sha256 MB/s':>11} "
        f"{'ratio':>5} {'bridge MB/s':>11} {'ratio':>5} proof"
    )
    for name, rounds in rows:
        for number, (plain, upload_only, hashing, bridge, size, proof) in enumerate(rounds, 1):
            mb = size / 1e6
            print(
                f"{f'{name} ({number})':<22} {mb:>4.0f} {mb / plain:>10.0f} {mb / upload_only:>11.0f} "
                f"{plain / upload_only:>5.2f} {mb / hashing:>11.0f} {plain / hashing:>5.2f} {mb / bridge:>11.0f} "
                f"{plain / bridge:>5.2f} {proof}"
            )
        medians = [statistics.median(round_[0] / round_[phase] for round_ in rounds) for phase in (1, 2, 3)]
        print(
            f"{f'{name} median':<22} {'':>4} {'':>10} {'':>11} {medians[0]:>5.2f} {'':>11} {medians[1]:>5.2f} "
            f"{'':>11} {medians[2]:>5.2f}"
        )
    shutil.rmtree(work)


if __name__ == "__main__":
    main()

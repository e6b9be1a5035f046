"""Fleet load: N simulated robots record and upload episodes concurrently to one store while the trainer ingests.

Each robot is a thread with its own spool, ``EpisodeRecorder`` (rosbags MCAP writer, hashing as it writes) and
``BagBridge``; it records synthetic episodes of the demo's topics and sizes (measured and commanded joint
states, executed command, intervention state, one 96x128 rgb8 ``top`` camera at 50 Hz; no physics), built
with ``lwd_interfaces.messages``, uploads each one, and then inserts it into one shared SQLite catalog (one
connection per robot, as concurrent indexers would). Meanwhile the trainer (``TrainerService``, the default
VLA as its frozen encoder) scans the store and ingests. Reported per store and N: episodes/s committed to the
store, catalog insert latency p50/p99, the trainer's backlog (episodes in the store, not yet ingested) sampled
over time, and a check that every episode is in the store, the catalog and the trainer's ledger exactly once.
A last phase ingests the first run's store again with 0, 1 and 2 ingest workers (fresh caches) and
reports frames/s. sftp:// runs on a loopback OpenSSH server started as ``bench/upload.py`` does (skipped
where /usr/sbin/sshd is missing).

    .venv/bin/python bench/fleet_load.py --robots 4,16,64 --episodes-per-robot 1 --steps 100
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from lwd_fleet.catalog import Catalog
from lwd_fleet.layout import manifest_key
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.store import FleetStore
from lwd_interfaces import lwd_typestore, messages, topics
from lwd_interfaces.manifest import Manifest
from lwd_learner.trainer import TrainerConfig, TrainerService
from lwd_logger.bridge import BagBridge
from lwd_logger.episode_facts import EpisodeInfo
from lwd_logger.recorder import EpisodeRecorder
from lwd_logger.spool import Spool
from lwd_logger.writer import RosbagsWriter
from lwd_policy.checkpoint import save_checkpoint
from lwd_policy.config import VLAConfig
from lwd_policy.model import FlowMatchingVLA
from lwd_policy.normalization import Normalizer
from upload import SSHD, start_sshd

JOINTS = [f"joint_{index}" for index in range(14)]
START_NS = 1_790_000_000 * 10**9


class HashEmbedder:
    """Deterministic stand-in for the sentence model (no model download): a seeded vector per instruction."""

    def embed(self, texts: list[str]) -> torch.Tensor:
        """One 384-dim vector per text."""
        seeds = [int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) for text in texts]
        return torch.stack([torch.randn(384, generator=torch.Generator().manual_seed(seed)) for seed in seeds])


def record(recorder: EpisodeRecorder, info: EpisodeInfo, steps: int, frames: list[np.ndarray]) -> None:
    """One labelled episode of ``steps`` 50 Hz control steps."""
    types = lwd_typestore().types
    recorder.start_episode(info)
    for index in range(steps):
        stamp = START_NS + index * 20_000_000
        q = np.full(14, index * 1e-3)
        intervention = types["lwd_msgs/msg/InterventionState"](
            header=messages.header(stamp), mode=0, source="policy", active=False
        )
        for topic, msgtype, message in (
            (topics.JOINT_STATES, topics.JOINT_STATE_TYPE, messages.joint_state(stamp, JOINTS, q, q)),
            (topics.camera_topic("top"), topics.IMAGE_TYPE, messages.rgb8_image(stamp, "top", frames[index % 4])),
            (topics.POLICY_COMMAND, topics.JOINT_STATE_TYPE, messages.joint_state(stamp, JOINTS, q)),
            (topics.EXECUTED_COMMAND, topics.JOINT_STATE_TYPE, messages.joint_state(stamp, JOINTS, q)),
            (topics.INTERVENTION_STATE, "lwd_msgs/msg/InterventionState", intervention),
        ):
            recorder.record(topic, msgtype, message, stamp)
    recorder.set_label(index % 2 == 0, "sim/ground_truth")
    recorder.end_episode()


class Fleet:
    """N robot threads and what they measured: (key, commit time) per upload, catalog insert latencies."""

    def __init__(self, robots: int, episodes: int, steps: int, store_url: str, work: Path) -> None:
        self.robots, self.episodes, self.steps = robots, episodes, steps
        self.store_url, self.work = store_url, work
        self.committed: list[tuple[str, float]] = []
        self.insert_s: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._robot, args=(index,)) for index in range(robots)]

    def _robot(self, index: int) -> None:
        try:
            self._run_robot(index)
        except Exception as error:  # a benchmark robot that fails is reported, not hidden
            with self.lock:
                self.errors.append(f"robot{index}: {type(error).__name__}: {error}")

    def _run_robot(self, index: int) -> None:
        store = lwd_typestore()
        spool = Spool(self.work / f"spool-{index}")
        recorder = EpisodeRecorder(spool, lambda: RosbagsWriter(store), store)
        fleet_store = FleetStore(self.store_url)
        bridge = BagBridge(spool, fleet_store)
        catalog = Catalog(self.work / "fleet-catalog.sqlite")
        rng = np.random.default_rng(index)
        frames = [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(4)]
        for number in range(self.episodes):
            info = EpisodeInfo(
                episode_id=f"r{index:03d}e{number:03d}", robot_id=f"robot{index:03d}", task="transfer_cube"
            )
            record(recorder, info, self.steps, frames)
            for result in bridge.upload_pending():
                committed = time.monotonic()
                manifest = Manifest.from_json(fleet_store.read_bytes(manifest_key(result.key)))
                start = time.perf_counter()
                catalog.add(manifest, result.key)
                with self.lock:
                    self.insert_s.append(time.perf_counter() - start)
                    self.committed.append((result.key, committed))
        catalog.close()


def publish_encoder(store_url: str, work: Path) -> None:
    """The default VLA (untrained weights: ingest cost does not depend on them) as v000000-bench on stable."""
    vla = VLAConfig()
    folder = work / "pretrained"
    normalizer = Normalizer.identity(vla.proprio_dim, vla.action_dim)
    save_checkpoint(FlowMatchingVLA(vla), normalizer, folder, "v000000-bench")
    PolicyPublisher(FleetStore(store_url)).publish(folder, "v000000-bench", "stable")


def trainer(store_url: str, work: Path, workers: int = 0) -> TrainerService:
    """A trainer service on the store, publishing never (ingest is what is measured)."""
    config = TrainerConfig(store_url=store_url, work_dir=work, publish_every=10**9, ingest_workers=workers)
    return TrainerService(config, lambda checkpoint: HashEmbedder())


def run_load(store_url: str, robots: int, args: argparse.Namespace, work: Path) -> dict:
    """One load run: robots upload while the trainer ingests; returns the row's figures."""
    publish_encoder(store_url, work)
    service = trainer(store_url, work / "trainer")
    fleet = Fleet(robots, args.episodes_per_robot, args.steps, store_url, work)
    expected = robots * args.episodes_per_robot
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(args.sample_every):
            samples.append((time.monotonic() - start, len(fleet.committed) - len(service.ledger)))

    start = time.monotonic()
    sampler = threading.Thread(target=sample)
    sampler.start()
    for thread in fleet.threads:
        thread.start()
    while len(service.ledger) < expected and not fleet.errors:
        service.ingest_new()
        if len(service.ledger) < expected:
            time.sleep(0.2)
    for thread in fleet.threads:
        thread.join()
    ingested_at = time.monotonic() - start
    done.set()
    sampler.join()
    service.close()
    if fleet.errors:
        raise RuntimeError("; ".join(fleet.errors))
    upload_end = max(stamp for _, stamp in fleet.committed) - start
    keys = [key for key, _ in fleet.committed]
    store_keys = sorted(k.rsplit("/", 1)[0] for k in FleetStore(store_url).glob("episodes/*/*/*/manifest.json"))
    catalog = Catalog(work / "fleet-catalog.sqlite")
    catalogued = Counter(row["store_path"] for row in catalog.episodes())
    catalog.close()
    statuses = Counter(entry["status"] for entry in service.ledger.values())
    exactly_once = (
        len(keys) == len(set(keys)) == expected
        and sorted(keys) == store_keys
        and set(catalogued) == set(keys)
        and set(catalogued.values()) == {1}
        and statuses == {"ingested": expected}
        and len(service.buffer.episode_keys()) == expected
    )
    return {
        "episodes": expected,
        "episodes_per_s": expected / upload_end,
        "insert_p50_ms": 1e3 * statistics.median(fleet.insert_s),
        "insert_p99_ms": 1e3 * float(np.percentile(fleet.insert_s, 99)),
        "upload_s": upload_end,
        "ingested_s": ingested_at,
        "backlog": samples,
        "exactly_once": exactly_once,
    }


def ingest_rates(store_url: str, work: Path, workers: list[int]) -> dict[int, float]:
    """frames/s of an ingest of everything in the store with cold caches and started workers, per worker count."""
    rates = {}
    for count in workers:
        service = trainer(store_url, work / f"rate-{count}", workers=count)
        service.ingest_pool.warm_up()
        start = time.perf_counter()
        service.ingest_new()
        elapsed = time.perf_counter() - start
        rates[count] = sum(service.buffered[key].features.shape[0] for key in service.buffered) / elapsed
        service.close()
    return rates


def print_row(store: str, robots: int, row: dict) -> None:
    """One table row and its backlog samples."""
    backlog = ", ".join(f"{t:.0f}s:{n}" for t, n in row["backlog"])
    print(
        f"| {store} | {robots} | {row['episodes']} | {row['episodes_per_s']:.2f} | {row['insert_p50_ms']:.1f} | "
        f"{row['insert_p99_ms']:.1f} | {row['upload_s']:.1f} | {row['ingested_s']:.1f} | "
        f"{'yes' if row['exactly_once'] else 'NO'} | {backlog} |",
        flush=True,
    )


def main() -> None:
    """Run every store and N, then the ingest-worker phase, and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robots", default="4,16,64", help="comma-separated numbers of robots")
    parser.add_argument("--episodes-per-robot", type=int, default=1)
    parser.add_argument("--steps", type=int, default=100, help="50 Hz control steps per episode")
    parser.add_argument("--stores", default="file,sftp", help="file and/or sftp (loopback sshd)")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between backlog samples")
    parser.add_argument("--workers", default="0,1,2", help="ingest workers of the last phase ('' to skip)")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    root = Path(tempfile.mkdtemp(dir=args.dir))
    sshd = None
    print(
        "| store | robots | episodes | episodes/s committed | insert p50 ms | insert p99 ms | uploads done s "
        "| all ingested s | exactly once | trainer backlog (time: episodes) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    first_store = None
    try:
        for store in args.stores.split(","):
            for robots in (int(n) for n in args.robots.split(",")):
                work = root / f"{store}-{robots}"
                work.mkdir()
                if store == "sftp":
                    if not os.path.exists(SSHD):
                        print(f"sftp skipped: {SSHD} missing (apt-get install openssh-server)")
                        break
                    if sshd is None:
                        sshd = start_sshd(root / "ssh")
                    url = f"sftp://{os.environ.get('USER', 'root')}@127.0.0.1:{sshd[1]}{work / 'store'}"
                    url += f"?key_filename={sshd[2]}"
                    (work / "store").mkdir()
                else:
                    url = f"file://{work / 'store'}"
                print_row(f"{store}://", robots, run_load(url, robots, args, work))
                first_store = first_store or url
        if args.workers and first_store:
            rates = ingest_rates(first_store, root, [int(n) for n in args.workers.split(",")])
            base = rates[min(rates)]
            for count, rate in rates.items():
                print(f"ingest workers {count}: {rate:.1f} frames/s ({rate / base:.2f}x)")
    finally:
        if sshd is not None:
            sshd[0].kill()
            sshd[0].wait()
        shutil.rmtree(root)


if __name__ == "__main__":
    main()

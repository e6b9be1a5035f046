"""Fleet load: N simulated robots record and upload episodes concurrently to one store while the trainer ingests.

Each robot is a thread with its own spool, ``EpisodeRecorder`` (rosbags MCAP writer, hashing as it writes) and
``BagBridge``; it records synthetic episodes of the demo's topics and sizes (measured and commanded joint
states, executed command, intervention state, one 96x128 rgb8 ``top`` camera at 50 Hz; no physics), built
with ``lwd_interfaces.messages``, uploads each one, and then inserts it into one shared SQLite catalog (one
connection per robot, as concurrent indexers would). Meanwhile the trainer (``TrainerService``, the default
VLA as its frozen encoder) scans the store and ingests. Reported per store and N: episodes/s committed to the
store, catalog insert latency p50/p99, the trainer's backlog (episodes in the store, not yet ingested) sampled
over time, and a check that every episode is in the store, the catalog and the trainer's ledger exactly once.
The last phases ingest one run's store again (the first store kind's run with ``--ingest-robots`` robots) with
fresh caches: with 0, 1 and 2 ingest workers in one process, then as 1 and 2 ``torchrun`` ranks (gloo, the
cores split between them unless ``--ranks`` says ``RxT``), each rank preparing its share of the episodes;
both report frames/s (ratios to the first of each phase). sftp:// runs
on a loopback OpenSSH server started as ``bench/upload.py`` does (skipped where /usr/sbin/sshd is missing),
s3:// on moto's S3 API server on loopback (``python -m moto.server``, dummy credentials, one bucket).

    .venv/bin/python bench/fleet_load.py --robots 4,16,64 --episodes-per-robot 1 --steps 100
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
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
from lwd_learner.distributed import DistributedContext
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
S3_BUCKET = "lwd-bench"


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
    recorder.set_label(index % 2 == 0, "sim/ground_truth", index % 2 == 0)
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


def trainer(
    store_url: str, work: Path, workers: int = 0, distributed: DistributedContext | None = None
) -> TrainerService:
    """A trainer service on the store, publishing never (ingest is what is measured)."""
    config = TrainerConfig(store_url=store_url, work_dir=work, publish_every=10**9, ingest_workers=workers)
    return TrainerService(config, lambda checkpoint: HashEmbedder(), distributed)


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
        rates[count] = sum(service.buffered[key].features.steps for key in service.buffered) / elapsed
        service.close()
    return rates


def rank_rates(store_url: str, work: Path, layouts: list[str]) -> list[tuple[int, int, dict]]:
    """Per layout ``R`` or ``RxT`` (R torchrun ranks of T torch threads; T defaults to the cores split between
    the ranks), in the given order (repeat layouts to interleave them): (R, T, figures), the figures being the
    frames and seconds of an ingest of everything in the store with cold caches (every rank started and its
    model loaded before timing), the frames each rank encoded and the CPU seconds each rank used (what the
    rate would be on cores of its own, where the machine is shared)."""
    results = []
    for number, layout in enumerate(layouts):
        ranks, _, threads = layout.partition("x")
        threads = threads or str(max(1, (os.cpu_count() or 1) // int(ranks)))
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc-per-node", ranks, __file__, "--ingest-rank", store_url, str(work / f"ranks-{number}"),
            "--threads", threads,
        ]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append((int(ranks), int(threads), json.loads(output.strip().splitlines()[-1])))
    return results


def ingest_as_rank(store_url: str, work: Path, threads: int) -> None:
    """One rank of ``rank_rates`` (under torchrun): time one ``ingest_new`` of the whole store; rank 0 prints
    the figures as one JSON line."""
    torch.set_num_threads(threads)
    context = DistributedContext.from_environment()
    service = trainer(store_url, work, distributed=context)
    context.barrier()
    start, cpu = time.perf_counter(), time.process_time()
    service.ingest_new()
    cpu = time.process_time() - cpu
    context.barrier()
    elapsed = time.perf_counter() - start
    encoded = context.all_gather_json(service.features.frames_encoded)
    cpu_seconds = context.all_gather_json(cpu)
    frames = sum(int(entry.features.shape[0]) for entry in service.buffered.values())
    service.close()
    if context.is_main:
        figures = {"frames": frames, "seconds": elapsed, "encoded_per_rank": encoded, "cpu_per_rank": cpu_seconds}
        print(json.dumps(figures), flush=True)
    context.shutdown()


class LoopbackServers:
    """The sshd (sftp://) and moto S3 server (s3://) the rows need, started on first use, stopped by ``stop``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sshd: tuple[subprocess.Popen, int, Path] | None = None
        self.moto: subprocess.Popen | None = None
        self.s3_endpoint = ""

    def url(self, kind: str, work: Path) -> str | None:
        """The store URL of one run (its own folder or prefix); None when the server cannot run here."""
        if kind == "file":
            return f"file://{work / 'store'}"
        if kind == "sftp":
            if not os.path.exists(SSHD):
                print(f"sftp skipped: {SSHD} missing (apt-get install openssh-server)")
                return None
            if self.sshd is None:
                self.sshd = start_sshd(self.root / "ssh")
            (work / "store").mkdir()
            user = os.environ.get("USER", "root")
            return f"sftp://{user}@127.0.0.1:{self.sshd[1]}{work / 'store'}?key_filename={self.sshd[2]}"
        if kind == "s3":
            if self.moto is None:
                self._start_moto()
            return f"s3://{S3_BUCKET}/{work.name}?endpoint_url={self.s3_endpoint}"
        raise ValueError(f"unknown store kind {kind!r} (file, sftp, s3)")

    def _start_moto(self) -> None:
        """moto's S3 server on a free loopback port, with the bucket; dummy credentials for this process."""
        log = self.root / "moto.log"
        with open(log, "w") as sink:
            command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"]
            self.moto = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink)
        deadline = time.monotonic() + 30
        while not (found := re.search(r"Running on http://127\.0\.0\.1:(\d+)", log.read_text())):
            if time.monotonic() > deadline or self.moto.poll() is not None:
                raise RuntimeError(f"moto's S3 server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        self.s3_endpoint = f"http://127.0.0.1:{found.group(1)}"
        os.environ.update(
            {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
        )
        request = urllib.request.Request(f"{self.s3_endpoint}/{S3_BUCKET}", method="PUT")
        urllib.request.urlopen(request, timeout=10).close()

    def stop(self) -> None:
        """Stop whatever was started."""
        if self.sshd is not None:
            self.sshd[0].kill()
            self.sshd[0].wait()
        if self.moto is not None:
            self.moto.terminate()
            self.moto.wait()


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
    """Run every store and N, then the ingest phases, and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robots", default="4,16,64", help="comma-separated numbers of robots")
    parser.add_argument("--episodes-per-robot", type=int, default=1)
    parser.add_argument("--steps", type=int, default=100, help="50 Hz control steps per episode")
    parser.add_argument("--stores", default="file,sftp,s3", help="file, sftp (loopback sshd), s3 (loopback moto)")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between backlog samples")
    parser.add_argument("--ingest-robots", type=int, default=16, help="the run whose store the ingest phases use")
    parser.add_argument("--workers", default="0,1,2", help="ingest workers of the workers phase ('' to skip)")
    parser.add_argument(
        "--ranks", default="1,2", help="torchrun ranks per ranks-phase run, R or RxT (T torch threads; '' to skip)"
    )
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    parser.add_argument("--ingest-rank", nargs=2, metavar=("STORE_URL", "WORK"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ingest_rank:
        ingest_as_rank(args.ingest_rank[0], Path(args.ingest_rank[1]), args.threads)
        return
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    root = Path(tempfile.mkdtemp(dir=args.dir))
    servers = LoopbackServers(root)
    print(
        "| store | robots | episodes | episodes/s committed | insert p50 ms | insert p99 ms | uploads done s "
        "| all ingested s | exactly once | trainer backlog (time: episodes) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    ingest_store = None
    try:
        for kind in args.stores.split(","):
            for robots in (int(n) for n in args.robots.split(",")):
                work = root / f"{kind}-{robots}"
                work.mkdir()
                url = servers.url(kind, work)
                if url is None:
                    break
                print_row(f"{kind}://", robots, run_load(url, robots, args, work))
                if ingest_store is None or (kind == args.stores.split(",")[0] and robots == args.ingest_robots):
                    ingest_store = url
        if args.workers and ingest_store:
            rates = ingest_rates(ingest_store, root, [int(n) for n in args.workers.split(",")])
            base = rates[min(rates)]
            for count, rate in rates.items():
                print(f"ingest workers {count}: {rate:.1f} frames/s ({rate / base:.2f}x)")
        if args.ranks and ingest_store:
            base = None
            for ranks, threads, result in rank_rates(ingest_store, root, args.ranks.split(",")):
                rate = result["frames"] / result["seconds"]
                base = base or rate
                cpu = ", ".join(f"{seconds:.1f}" for seconds in result["cpu_per_rank"])
                print(
                    f"ingest ranks {ranks} x {threads} torch threads: {rate:.1f} frames/s ({rate / base:.2f}x), "
                    f"{result['frames']} frames, encoded per rank {result['encoded_per_rank']}, CPU s per rank {cpu}"
                )
    finally:
        servers.stop()
        shutil.rmtree(root)


if __name__ == "__main__":
    main()

"""Recording throughput: EpisodeRecorder vs a raw sequential write of the same bytes to the same disk.

Workload: 3 cameras 480x640 rgb8 + /joint_states at 50 Hz (the contract's per-step topics), serialized once
up front as a ROS raw subscription hands them over. Rows:
- raw write: the serialized bytes appended to one file, fsync every second of data (the recorder's flush period);
- recorder (none / zstd): EpisodeRecorder -> RosbagsWriter MCAP, as fast as it goes, flushed (fsync) once per
  second of data like the raw write (throughput, ratio to raw);
  modes are interleaved ``--repeats`` times and the medians are shown (the machine is shared and noisy);
- paced 50 Hz: a producer thread delivers each step on the 50 Hz clock into a bounded 1 s queue (what a ROS
  executor buffers); a full queue drops the message. Reports dropped messages.
The commit (metadata, manifest sha256 of the bag, rename) is timed separately.

    .venv/bin/python bench/recording.py --seconds 3 --dir /tmp/lwd-bench
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from lwd_interfaces import lwd_typestore, topics
from lwd_logger.episode_facts import EpisodeInfo
from lwd_logger.recorder import EpisodeRecorder
from lwd_logger.spool import Spool
from lwd_logger.writer import RosbagsWriter

CAMERAS = ("top", "left_wrist", "right_wrist")
RATE_HZ = 50


def serialized_steps(seconds: float) -> list[list[tuple[str, str, bytes]]]:
    """Per-step (topic, type, CDR bytes); camera frames are drawn from a pool of noisy images."""
    store = lwd_typestore()
    types = store.types
    rng = np.random.default_rng(0)
    pool = [rng.integers(0, 256, 480 * 640 * 3, dtype=np.uint8) for _ in range(4)]
    steps = []
    for index in range(int(seconds * RATE_HZ)):
        stamp_ns = 1_700_000_000 * 10**9 + index * 20_000_000
        stamp = types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
        header = types["std_msgs/msg/Header"](stamp=stamp, frame_id="base")
        q = np.full(14, index * 1e-3)
        joint = types["sensor_msgs/msg/JointState"](
            header=header, name=[f"j{i}" for i in range(14)], position=q, velocity=q, effort=q[:0]
        )
        step = [
            (topics.JOINT_STATES, topics.JOINT_STATE_TYPE, bytes(store.serialize_cdr(joint, topics.JOINT_STATE_TYPE)))
        ]
        for number, camera in enumerate(CAMERAS):
            image = types["sensor_msgs/msg/Image"](
                header=header,
                height=480,
                width=640,
                encoding="rgb8",
                is_bigendian=0,
                step=1920,
                data=pool[(index + number) % len(pool)],
            )
            step.append(
                (topics.camera_topic(camera), topics.IMAGE_TYPE, bytes(store.serialize_cdr(image, topics.IMAGE_TYPE)))
            )
        steps.append(step)
    return steps


def raw_write(steps, folder: Path) -> float:
    """Seconds to append every message's bytes to one file, fsync once per second of data."""
    path = folder / "raw.bin"
    start = time.perf_counter()
    with open(path, "wb") as sink:
        for index, step in enumerate(steps):
            for _, _, data in step:
                sink.write(data)
            if (index + 1) % RATE_HZ == 0:
                sink.flush()
                os.fsync(sink.fileno())
        sink.flush()
        os.fsync(sink.fileno())
    elapsed = time.perf_counter() - start
    path.unlink()
    return elapsed


def make_recorder(folder: Path, compression: str, flush_period_s: float) -> EpisodeRecorder:
    store = lwd_typestore()
    spool = Spool(folder / f"spool-{compression}-{time.monotonic_ns()}")
    return EpisodeRecorder(
        spool, lambda: RosbagsWriter(store, "mcap", compression), store, flush_period_s=flush_period_s
    )


def record(steps, folder: Path, compression: str) -> tuple[float, float, int]:
    """(record seconds, commit seconds, bag bytes) recording as fast as possible."""
    recorder = make_recorder(folder, compression, flush_period_s=3600.0)
    recorder.start_episode(EpisodeInfo(episode_id="bench", robot_id="bench", task="transfer_cube"))
    start = time.perf_counter()
    clock = time.time_ns()
    for index, step in enumerate(steps):
        for topic, msgtype, data in step:
            recorder.record(topic, msgtype, data, clock)
        if (index + 1) % RATE_HZ == 0:
            recorder.flush()
    recorder.flush()
    recorded = time.perf_counter() - start
    start = time.perf_counter()
    committed = recorder.end_episode()
    commit = time.perf_counter() - start
    size = sum(f.stat().st_size for f in committed.iterdir())
    shutil.rmtree(recorder.spool.root)
    return recorded, commit, size


def paced(steps, folder: Path) -> tuple[int, int, float]:
    """(messages recorded, messages dropped, worst queue depth in s) with a 50 Hz producer and a 1 s queue."""
    recorder = make_recorder(folder, "none", flush_period_s=1.0)
    recorder.start_episode(EpisodeInfo(episode_id="paced", robot_id="bench", task="transfer_cube"))
    per_step = len(steps[0])
    inbox: queue.Queue = queue.Queue(maxsize=RATE_HZ * per_step)
    dropped = 0
    worst = 0
    done = object()

    def produce() -> None:
        nonlocal dropped, worst
        start = time.perf_counter()
        for index, step in enumerate(steps):
            delay = start + index / RATE_HZ - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            for message in step:
                try:
                    inbox.put_nowait((message, time.time_ns()))
                except queue.Full:
                    dropped += 1
            worst = max(worst, inbox.qsize())
        inbox.put(done)

    producer = threading.Thread(target=produce)
    producer.start()
    recorded = 0
    while (item := inbox.get()) is not done:
        (topic, msgtype, data), received = item
        recorder.record(topic, msgtype, data, received)
        recorded += 1
    producer.join()
    recorder.end_episode()
    shutil.rmtree(recorder.spool.root)
    return recorded, dropped, worst / per_step / RATE_HZ


def main() -> None:
    """Run every mode and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="episode length [s of 50 Hz steps]")
    parser.add_argument("--dir", type=Path, default=None, help="folder on the disk to measure (default: a temp dir)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per mode; the table shows medians")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(dir=args.dir))
    steps = serialized_steps(args.seconds)
    total = sum(len(d) for step in steps for _, _, d in step)
    messages = sum(len(step) for step in steps)
    print(
        f"workload: {len(steps)} steps x {len(steps[0])} topics = {messages} messages, {total / 1e6:.0f} MB "
        f"({total / 1e6 / args.seconds:.0f} MB/s needed for real time)"
    )
    raws, runs = [], {"none": [], "zstd": []}
    for _ in range(args.repeats):
        raws.append(raw_write(steps, folder))
        for compression, results in runs.items():
            results.append(record(steps, folder, compression))
    raw = statistics.median(raws)
    rows = [("raw sequential write", raw, None, total)]
    for compression, results in runs.items():
        median = [statistics.median(column) for column in zip(*results, strict=True)]
        rows.append((f"recorder mcap {compression}", median[0], median[1], median[2]))
    print(f"{'mode':<24} {'MB/s':>8} {'ratio':>6} {'x realtime':>10} {'commit s':>9} {'bag MB':>8}")
    for name, seconds, commit, size in rows:
        rate = total / seconds / 1e6
        print(
            f"{name:<24} {rate:>8.0f} {raw / seconds:>6.2f} {args.seconds / seconds:>10.2f} "
            f"{'' if commit is None else f'{commit:.2f}':>9} {size / 1e6:>8.0f}"
        )
    recorded, dropped, worst = paced(steps, folder)
    print(
        f"paced 50 Hz (none): {recorded}/{messages} messages recorded, {dropped} dropped, "
        f"worst queue {worst:.2f} s of data"
    )
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()

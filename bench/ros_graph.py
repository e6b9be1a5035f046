"""Benchmark of the robot stack as a live ROS 2 graph: samples lost, chunk latency, activate -> first command.

    .venv/bin/python bench/ros_graph.py                    # one simulated robot, a 60 s episode
    .venv/bin/python bench/ros_graph.py --seconds 20 --out /tmp/ros_graph.json

Starts the processes that ``bringup.launch.py robot_profile:=aloha_sim use_sim:=true`` describes (derived
through test/launch_standin.py and started by test/live_graph.py's ``start_launch``, without its
test-speed overrides: every node runs on its shipped parameters) with a fresh ``lwd policy init`` checkpoint
(H=20, camera top) and a file:// store in a temp dir. An independent probe node subscribes to every recorded
topic with the contract QoS and keeps each sample's DDS publication sequence number. Measured:

1. per recorded topic, over one episode of ``--seconds`` (ended with the LabelEpisode service): samples
   published (the publisher's sequence-number span between the first and last recorded sample, as the
   probe saw it), recorded (messages in the committed bag), lost according to the recorder (bag metadata
   ``lwd.lost_samples``), and received by the probe over the same span;
2. chunk inference latency inside policy_node (``ActionChunk.inference_latency``) over the episode;
3. the time from the policy node's activate transition returning success to the first ``/policy/command``.

Prints markdown tables (progress on stderr); every node is stopped with SIGINT and its exit code reported.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "test"))

from launch_standin import LaunchRun  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState  # noqa: E402
from live_graph import BIN, NodeGraph, Probe, free_domain_id, sim_robot_plan, start_launch, wait_until  # noqa: E402
from lwd_interfaces import topics  # noqa: E402
from lwd_interfaces.ros import contract_qos, message_class  # noqa: E402
from lwd_logger.bag_reader import BagReader  # noqa: E402
from lwd_logger.errors import BagError  # noqa: E402
from lwd_logger.parameters import RECORDED_TOPICS  # noqa: E402
from lwd_logger.recorder_node import QUEUE_DEPTH  # noqa: E402

from lwd_msgs.msg import EpisodeEvent  # noqa: E402
from lwd_msgs.srv import LabelEpisode  # noqa: E402

ROBOT = "robot_a"
CAMERAS = ("top",)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def stamp_ns(message: Any) -> int:
    return message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec


class TopicTap:
    """The probe's view of one topic: (receive time, publication sequence number, header stamp) per sample."""

    def __init__(self, probe: Probe, topic: str, namespace: str, keep: bool = False) -> None:
        self.topic = topic
        self.name = f"{namespace}{topic}"
        self.samples: list[tuple[float, int, int]] = []
        self.messages: list[Any] = []
        self.keep = keep
        self.lock = threading.Lock()
        camera = topic.startswith(topics.CAMERA_PREFIX)
        msgtype = message_class(topics.IMAGE_TYPE if camera else topics.TOPIC_TYPES[topic])
        qos = contract_qos(topic, depth=QUEUE_DEPTH)  # the recorder's depth: a latched topic keeps only 1 by default
        probe.node.create_subscription(msgtype, self.name, self._on_message, qos)

    def _on_message(self, message: Any, info: dict[str, Any]) -> None:
        received = time.monotonic()
        with self.lock:
            self.samples.append((received, int(info["publication_sequence_number"]), stamp_ns(message)))
            if self.keep:
                self.messages.append((received, message))


def change_state(probe: Probe, node: str, transition: int, timeout: float = 90.0) -> tuple[bool, float]:
    """A lifecycle transition of ``node``; (success, monotonic time its response arrived in the probe)."""
    client = probe.node.create_client(ChangeState, f"{node}/change_state")
    arrived: list[float] = []
    try:
        wait_until(client.service_is_ready, timeout, f"service {node}/change_state")
        future = client.call_async(ChangeState.Request(transition=Transition(id=transition)))
        future.add_done_callback(lambda _: arrived.append(time.monotonic()))
        wait_until(lambda: future.done() and arrived, timeout, f"{node}: transition {transition}")
        return bool(future.result().success), arrived[0]
    finally:
        probe.node.destroy_client(client)


def bring_up(probe: Probe, plan: LaunchRun, before_activate: dict[str, Callable[[], None]]) -> dict[str, float]:
    """configure then activate every lifecycle node bringup's events configure (as its handlers do).

    Returns each node's full name with the time its activate response arrived; ``before_activate[name]``
    runs between the two transitions.
    """
    activated = {}
    for event in plan.events:
        node = event["lifecycle_node_matcher"]["target_action"]
        name = f"/{plan.scopes[id(node)].resolve(node['namespace'])}/{node['name']}"
        ok, _ = change_state(probe, name, Transition.TRANSITION_CONFIGURE)
        assert ok, f"{name}: configure failed"
        before_activate.get(name, lambda: None)()
        ok, activated[name] = change_state(probe, name, Transition.TRANSITION_ACTIVATE)
        assert ok, f"{name}: activate failed"
        progress(f"{name} active")
    return activated


def committed_bag(store: Path, spool: Path, episode_id: str, timeout: float, graph: NodeGraph) -> BagReader:
    """The committed episode, from the store once the bridge uploaded it, or else from the robot's spool."""

    def find() -> BagReader | None:
        folders = [p.parent for p in (store / "episodes" / ROBOT).glob(f"*/{episode_id}/manifest.json")]
        if (spool / episode_id / "manifest.json").is_file():
            folders.append(spool / episode_id)
        for folder in folders:
            try:
                return BagReader(folder)
            except BagError:  # the bridge deleted the spool copy while it was opened: look again
                continue
        return None

    return wait_until(find, timeout, f"episode {episode_id} committed", graph)


def loss_counts(text: str) -> dict[str, int]:
    """``lwd.lost_samples`` (``/topic=count,...``) as a dict."""
    return {topic: int(count) for topic, count in (item.rsplit("=", 1) for item in text.split(",") if item)}


def publication_span(recorded: list[int], tap: TopicTap) -> tuple[int, int, bool] | None:
    """(first, last) publication sequence number of the samples recorded with header stamps ``recorded``, and
    whether the probe saw both edge samples (else the span is that of the probe's samples inside them).

    Stamps need not be unique (an episode's END and the next START share one), so the k-th sample of the
    first stamp from the end and the k-th of the last stamp from the start are the edges, k being how many
    samples with that stamp were recorded.
    """
    first, last = min(recorded), max(recorded)
    with tap.lock:
        samples = sorted((seq, stamp) for _, seq, stamp in tap.samples)
    at_first = [seq for seq, stamp in samples if stamp == first]
    at_last = [seq for seq, stamp in samples if stamp == last]
    k_first, k_last = recorded.count(first), recorded.count(last)
    if len(at_first) >= k_first and len(at_last) >= k_last:
        return at_first[-k_first], at_last[k_last - 1], True
    inside = [seq for seq, stamp in samples if first <= stamp <= last]
    return (inside[0], inside[-1], False) if inside else None


def topic_rows(bag: BagReader, taps: dict[str, TopicTap], publishers: dict[str, int]) -> list[dict[str, Any]]:
    """Published / recorded / lost / probe-received per recorded topic, over the span the bag covers."""
    stamps: dict[str, list[int]] = {}
    for item in bag.messages():
        stamps.setdefault(item.topic, []).append(stamp_ns(item.msg))
    lost = loss_counts(bag.info.custom_data.get("lwd.lost_samples", ""))
    rows = []
    for topic, recorded in sorted(bag.info.message_counts.items()):
        row: dict[str, Any] = {
            "topic": topic,
            "qos": topics.topic_qos(topic),
            "reliable": topics.topic_qos(topic) != topics.SENSOR_DATA,
            "recorded": recorded,
            "lost_recorder": lost.get(topic, 0),
            "publishers": publishers.get(topic, 0),
            "published": None,
            "probe_received": None,
            "probe_edges_seen": None,
        }
        tap = taps.get(topic)
        if tap is not None and topic in stamps and publishers.get(topic) == 1:
            span = publication_span(stamps[topic], tap)
            if span is not None:
                row["published"] = span[1] - span[0] + 1
                with tap.lock:
                    row["probe_received"] = sum(1 for _, seq, _ in tap.samples if span[0] <= seq <= span[1])
                row["probe_edges_seen"] = span[2]
        rows.append(row)
    return rows


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values) * 1e3
    return {
        "count": len(values),
        "p50_ms": float(np.percentile(array, 50)),
        "p99_ms": float(np.percentile(array, 99)),
        "max_ms": float(array.max()),
    }


def run(seconds: float, root: Path) -> dict[str, Any]:
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    checkpoint = root / "policy" / "v000000"
    progress(f"lwd policy init {checkpoint}")
    subprocess.run(
        [str(BIN / "lwd"), "policy", "init", str(checkpoint), "--cameras", ",".join(CAMERAS)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    store, data_dir = root / "store", root / "robots"
    store.mkdir()
    plan = sim_robot_plan(ROBOT, checkpoint, f"file://{store}", data_dir)
    domain = free_domain_id()
    graph = NodeGraph(root / "logs", domain)
    probe = Probe(domain, "lwd_bench_probe")
    ns = f"/{ROBOT}"
    result: dict[str, Any] = {}
    try:
        start_launch(graph, plan, root / "launch")
        progress(f"started {', '.join(sorted(graph.running()))} on DDS domain {domain}")
        events = (topics.EPISODE_EVENT, topics.REWARD_LABEL)
        recorded_topics = [*RECORDED_TOPICS, *(topics.camera_topic(c) for c in CAMERAS), *events]
        kept = (topics.EPISODE_EVENT, topics.ACTION_CHUNK)
        taps = {topic: TopicTap(probe, topic, ns, keep=topic in kept) for topic in recorded_topics}
        chunks = taps[topics.ACTION_CHUNK]
        command_tap = taps[topics.POLICY_COMMAND]

        wait_until(lambda: len(taps[topics.JOINT_STATES].samples) >= 10, 120, "the sim driver's joint states", graph)
        wait_until(lambda: taps[topics.camera_topic(CAMERAS[0])].samples, 60, "the sim driver's camera", graph)
        progress("sim driver publishing; configuring and activating the lifecycle nodes")

        def command_publisher_matched() -> None:  # the probe must see the first command
            wait_until(
                lambda: probe.node.count_publishers(command_tap.name) >= 1, 30, "the policy command publisher", graph
            )
            time.sleep(1.0)  # endpoint discovery completes shortly after the graph lists the publisher

        activated = bring_up(probe, plan, {f"{ns}/policy_node": command_publisher_matched})
        policy_active = activated[f"{ns}/policy_node"]
        first_command = wait_until(lambda: command_tap.samples, 30, "the first policy command", graph)[0][0]
        result["activate_to_first_command_s"] = first_command - policy_active
        progress(f"first /policy/command {result['activate_to_first_command_s'] * 1e3:.0f} ms after activate")

        events = taps[topics.EPISODE_EVENT].messages

        def started() -> EpisodeEvent | None:
            return next((m for _, m in events if m.event == EpisodeEvent.EVENT_START), None)

        start = wait_until(started, 60, "the episode start", graph)
        start_time = next(t for t, m in events if m is start)
        progress(f"episode {start.episode_id} started; recording for {seconds:.0f} s")
        while time.monotonic() - start_time < seconds:
            graph.assert_alive()
            time.sleep(min(5.0, max(0.0, seconds - (time.monotonic() - start_time))))
            progress(f"  {time.monotonic() - start_time:5.1f} s, {len(command_tap.samples)} commands seen")
        label = probe.call(
            LabelEpisode, f"{ns}/intervention_node/label_episode", LabelEpisode.Request(success=True, note="bench")
        )
        assert label.accepted, label.message
        end_time = time.monotonic()
        publishers = {topic: probe.node.count_publishers(tap.name) for topic, tap in taps.items()}
        progress("labelled; waiting for the committed bag")
        bag = committed_bag(store, data_dir / ROBOT / "spool", start.episode_id, 120, graph)
        progress(f"reading {bag.path}")
        result["bag"] = str(bag.path)
        result["episode_seconds"] = end_time - start_time
        result["bag_seconds"] = bag.info.duration_ns / 1e9
        result["topics"] = topic_rows(bag, taps, publishers)
        with chunks.lock:
            latencies = [m.inference_latency for t, m in chunks.messages if start_time <= t <= end_time]
        result["chunk_latency"] = percentiles(latencies)
    finally:
        progress("stopping every node with SIGINT")
        codes = graph.stop()
        logs = graph.logs()
        probe.close()
        graph.kill_all()
    result["exit_codes"] = codes
    result["incompatible_qos_in_logs"] = "incompatible QoS" in logs
    result["tracebacks_in_logs"] = "Traceback" in logs
    return result


def bag_rate(result: dict[str, Any]) -> float:
    """The recorded /joint_states rate [Hz] over the bag's span."""
    counts = {row["topic"]: row["recorded"] for row in result["topics"]}
    return (counts.get(topics.JOINT_STATES, 1) - 1) / max(result["bag_seconds"], 1e-9)


def print_tables(result: dict[str, Any], seconds: float) -> None:
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, no GPU"
    print(f"Machine: {machine}. ", end="")
    print(f"Date: {datetime.date.today().isoformat()}. ", end="")
    print(f"Episode: {result['episode_seconds']:.1f} s (asked {seconds:g}),", end="")
    rate = bag_rate(result)
    print(f" bag spans {result['bag_seconds']:.1f} s ({rate:.1f} Hz of /joint_states).")
    print()
    print("| topic                     | QoS         |    published | recorded | lost (recorder) | probe received |")
    print("|---------------------------|-------------|-------------:|---------:|----------------:|---------------:|")
    for row in result["topics"]:
        published = "n/a" if row["published"] is None else str(row["published"])
        if row["published"] is None and row["publishers"] != 1:
            published = f"n/a ({row['publishers']} pubs)"
        elif row["published"] is not None and not row["probe_edges_seen"]:
            published += "*"
        received = "" if row["probe_received"] is None else str(row["probe_received"])
        qos = f"{row['qos']}"
        print(
            f"| {row['topic']:<25} | {qos:<11} | {published:>12} | {row['recorded']:>8} "
            f"| {row['lost_recorder']:>15} | {received:>14} |"
        )
    reliable_lost = sum(row["lost_recorder"] for row in result["topics"] if row["reliable"])
    best_effort_lost = sum(row["lost_recorder"] for row in result["topics"] if not row["reliable"])
    print()
    print(f"Reliable samples lost by the recorder: **{reliable_lost}** (goal 0); best effort: {best_effort_lost}.")
    print()
    latency = result["chunk_latency"]
    print("| measure                                   |    value | goal   |")
    print("|-------------------------------------------|---------:|--------|")
    print(f"| chunks during the episode                 | {latency['count']:>8} |        |")
    print(f"| chunk inference latency p50 [ms]          | {latency['p50_ms']:>8.1f} |        |")
    print(f"| chunk inference latency p99 [ms]          | {latency['p99_ms']:>8.1f} |        |")
    print(f"| chunk inference latency max [ms]          | {latency['max_ms']:>8.1f} |        |")
    first = result["activate_to_first_command_s"]
    print(f"| policy activate -> first /policy/command  | {first * 1e3:>5.0f} ms | < 1 s  |")
    print()
    codes = ", ".join(f"{name} {code}" for name, code in sorted(result["exit_codes"].items()))
    print(f"Exit codes after SIGINT: {codes}.")
    if result["incompatible_qos_in_logs"] or result["tracebacks_in_logs"]:
        print("WARNING: the node logs contain 'incompatible QoS' or a Traceback.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="episode length [s]")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, bag) and print its path")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lwd_ros_graph_"))
    try:
        result = run(args.seconds, root)
    finally:
        if args.keep:
            progress(f"kept {root}")
        else:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    print_tables(result, args.seconds)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))
    if any(code != 0 for code in result["exit_codes"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()

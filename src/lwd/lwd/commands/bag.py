"""``lwd bag``: operator tools for episode bags.

- ``lwd bag info BAG``: storage, duration, topics and the episode's ``lwd.*`` facts.
- ``lwd bag render BAG``: GIF/MP4 of the cameras with interventions and outcome overlaid, plus a joint plot PNG.
- ``lwd bag replay BAG``: re-execute the recorded executed commands in the sim and report the drift.
- ``lwd bag play BAG``: publish the recorded messages on a live ROS 2 graph with their original timing (needs rclpy).
- ``lwd bag recover SPOOL``: turn interrupted recordings into readable incomplete episodes.
- ``lwd bag reindex BAG``: rebuild a missing metadata.yaml from a finished MCAP file (like ``ros2 bag reindex``).

A bag that cannot be read or an option it cannot honour (a BagError) ends a command with one line on stderr
and exit code 2, not a traceback (``lwd.cli`` reports it).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from lwd.arguments import add_path, non_negative_float, non_negative_int, positive_float, positive_int

PROGRESS_PERIOD_S = 1.0
"""Seconds between the progress lines of ``lwd bag play``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bag`` command group."""
    parser = subparsers.add_parser("bag", help="inspect, render, replay, play, recover and reindex episode bags")
    commands = parser.add_subparsers(dest="bag_command", required=True, metavar="BAG_COMMAND")

    info = commands.add_parser("info", help="print a bag's metadata and episode facts")
    info.add_argument("bag", type=Path)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(handler=run_info)

    render = commands.add_parser("render", help="video of the cameras with overlays, and a joint plot")
    render.add_argument("bag", type=Path)
    render.add_argument("--out", type=Path, help="video path, .gif or .mp4 (default: <bag>.gif next to the bag)")
    render.add_argument("--plot", type=Path, help="joint plot path (default: <bag>_joints.png next to the bag)")
    render.add_argument("--fps", type=positive_float, default=25.0)
    render.add_argument("--stride", type=positive_int, default=2, help="render every n-th control step")
    render.set_defaults(handler=run_render)

    replay = commands.add_parser("replay", help="re-execute the recorded commands in the sim, report drift")
    replay.add_argument("bag", type=Path)
    replay.add_argument(
        "--seed", type=non_negative_int, default=0, help="sim reset seed (use the episode's seed to match)"
    )
    replay.set_defaults(handler=run_replay)

    play = commands.add_parser("play", help="publish the bag on a live ROS 2 graph with its original timing")
    play.add_argument("bag", type=Path)
    play.add_argument("--rate", type=positive_float, default=1.0, help="speed factor (2 = twice as fast)")
    play.add_argument("--loop", action="store_true", help="start over after the last message until Ctrl-C")
    play.add_argument("--topics", nargs="+", default=[], metavar="TOPIC", help="recorded topics to play (default all)")
    play.add_argument("--namespace", default="", help="publish /T as /NS/T (the robot's namespace)")
    play.add_argument(
        "--remap",
        action="append",
        default=[],
        metavar="FROM:=TO",
        help="publish FROM (name after --namespace) as TO; repeatable",
    )
    play.add_argument("--clock", action="store_true", help="also publish /clock at the recorded times (use_sim_time)")
    play.add_argument(
        "--start-offset", type=non_negative_float, default=0.0, metavar="S", help="skip the first S seconds"
    )
    play.add_argument(
        "--delay", type=non_negative_float, default=0.0, metavar="S", help="wait S s for subscribers to connect"
    )
    play.set_defaults(handler=run_play)

    recover = commands.add_parser("recover", help="recover interrupted recordings in a spool folder")
    add_path(recover, "spool", must_be="dir")
    recover.set_defaults(handler=run_recover)

    reindex = commands.add_parser("reindex", help="rebuild a missing metadata.yaml from a finished MCAP file")
    reindex.add_argument("bag", type=Path)
    reindex.set_defaults(handler=run_reindex)


def run_info(args: argparse.Namespace) -> int:
    """Print what the bag's metadata says."""
    from lwd_logger.bag_reader import BagReader

    info = BagReader(args.bag).info
    if args.json:
        body = {
            "path": str(info.path),
            "storage_id": info.storage_id,
            "start_time_ns": info.start_time_ns,
            "duration_ns": info.duration_ns,
            "complete": info.complete,
            "message_counts": info.message_counts,
            "topic_types": info.topic_types,
            "custom_data": info.custom_data,
        }
        print(json.dumps(body, indent=2, sort_keys=True))
        return 0
    print(f"bag:       {info.path}")
    print(f"storage:   {info.storage_id}")
    print(f"duration:  {info.duration_ns / 1e9:.3f} s, {info.message_count} messages")
    print(f"complete:  {'yes' if info.complete else 'NO (never use as a complete episode)'}")
    print("topics:")
    for topic, count in sorted(info.message_counts.items()):
        print(f"  {topic:<32} {info.topic_types.get(topic, ''):<36} {count}")
    print("episode:")
    for key, value in sorted(info.custom_data.items()):
        print(f"  {key:<24} {value}")
    return 0


def run_render(args: argparse.Namespace) -> int:
    """Write the overlay video and the joint plot."""
    from lwd_logger.render import plot_joints, render_video

    bag = args.bag.resolve()
    video = args.out or bag.parent / f"{bag.name}.gif"
    plot = args.plot or bag.parent / f"{bag.name}_joints.png"
    summary = render_video(bag, video, fps=args.fps, stride=args.stride)
    plot_joints(bag, plot)
    print(f"{video}: {summary.frames} frames, {summary.intervention_frames} under intervention, {summary.outcome}")
    print(f"{plot}: commanded vs executed joints")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    """Replay the executed commands in the sim and print the drift per joint."""
    from lwd_logger.command_replay import replay_bag
    from lwd_sim.aloha import AlohaSimDriver

    def make_driver(task: str) -> AlohaSimDriver:
        return AlohaSimDriver(task=task or "transfer_cube", cameras=(), height=8, width=8)

    report = replay_bag(args.bag, make_driver, seed=args.seed)
    print(f"replayed {report.steps} steps of {args.bag} in sim task {report.task}")
    print(f"max |replayed - recorded| joint position: {report.max_drift:.4f}")
    print(f"mean |replayed - recorded| joint position: {report.mean_drift:.4f}")
    print(f"final drift per joint: {' '.join(f'{d:.3f}' for d in report.final_drift)}")
    return 0


def run_play(args: argparse.Namespace) -> int:
    """Publish the bag on the ROS graph with a progress line every second and a summary; Ctrl-C exits 0."""
    from lwd_logger.playback import Playback, PlaybackOptions, PlayedMessage, parse_remaps

    options = PlaybackOptions(
        topics=tuple(args.topics),
        rate=args.rate,
        loop=args.loop,
        remap=parse_remaps(args.remap),
        namespace=args.namespace,
        start_offset_s=args.start_offset,
    )
    playback = Playback(args.bag, options)
    try:
        from lwd_logger.ros_player import play
    except ImportError as error:
        print(f"lwd bag play: needs ROS 2 (rclpy and the bag's message packages): {error}", file=sys.stderr)
        return 2
    start_ns = playback.info.start_time_ns
    next_report = 0.0

    def progress(count: int, message: PlayedMessage) -> None:
        nonlocal next_report
        if time.monotonic() >= next_report:
            next_report = time.monotonic() + PROGRESS_PERIOD_S
            print(f"published {count} messages, bag time {(message.log_time_ns - start_ns) / 1e9:.2f} s", flush=True)

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (a script's `&`)
    print(f"playing {args.bag} on {len(playback.topics)} topics at rate {args.rate:g}; Ctrl-C stops", flush=True)
    summary = play(playback, clock=args.clock, delay_s=args.delay, on_published=progress)
    ending = "interrupted after" if summary.interrupted else "done:"
    print(f"{ending} {summary.published} messages published in {summary.wall_s:.2f} s", flush=True)
    return 0


def run_recover(args: argparse.Namespace) -> int:
    """Recover every interrupted recording of a spool."""
    from lwd_interfaces import lwd_typestore
    from lwd_logger.recovery import recover_spool
    from lwd_logger.spool import Spool

    recovered = recover_spool(Spool(args.spool), lwd_typestore())
    for folder in recovered:
        print(f"recovered {folder} (outcome incomplete)")
    print(f"{len(recovered)} episode(s) recovered")
    return 0


def run_reindex(args: argparse.Namespace) -> int:
    """Write metadata.yaml for a bag folder holding one finished MCAP file."""
    from lwd_logger.reindex import reindex

    print(f"wrote {reindex(args.bag)}")
    return 0

"""Benchmark of reading episode bags: lwd's BagReader against a fresh rosbags AnyReader per bag.

BC pretraining and the trainer's ingest read hundreds of bags that store the same type definitions. rosbags'
AnyReader builds a typestore from a bag's definitions, and compiles its message parsers, on every open; BagReader
shares one typestore between bags with the same definitions (``lwd_logger.bag_reader.bag_typestore``). Rows, in
interleaved blocks over the same bags (so the machine's load hits both alike):

1. BagReader: open for the bag's info, then decode every message (what ``decode_episode`` reads);
2. AnyReader per bag, as BagReader read before it shared typestores: PyYAML's pure-Python loader for the
   metadata, one AnyReader open for the info and another to decode every message; rosbags parses the metadata
   with ruamel.yaml on each open, with its C parser (``ruamel.yaml.clib``, in requirements.txt since
   2026-12-06);
3. the same with ruamel.yaml's pure-Python parser (the C parser switched off for the row), as before 2026-12-06;
4. ``decode_episode``, the learner's whole decode of an episode into arrays (uses row 1's reader).

    .venv/bin/python bench/bag_read.py --bags /path/to/store/episodes   # recorded bags, e.g. a demo's
    .venv/bin/python bench/bag_read.py --episodes 60                     # written here: 150 steps, 96x128 images
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import ruamel.yaml.main
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "test" / "learner"))

from conftest import write_episode_bag  # noqa: E402  (the test suite's LWD bag writer)
from lwd_interfaces import lwd_typestore  # noqa: E402
from lwd_learner.dataset import decode_episode  # noqa: E402
from lwd_logger.bag_reader import BagReader  # noqa: E402
from rosbags.highlevel import AnyReader  # noqa: E402


def read_with_bag_reader(bag: Path) -> int:
    """Messages decoded by lwd's BagReader."""
    return sum(1 for _ in BagReader(bag).messages())


def read_with_any_reader(bag: Path) -> int:
    """Messages decoded the way BagReader did before it shared typestores."""
    yaml.safe_load((bag / "metadata.yaml").read_text())
    with AnyReader([bag], default_typestore=lwd_typestore()) as reader:
        dict(reader.topics)
    with AnyReader([bag], default_typestore=lwd_typestore()) as reader:
        return sum(1 for connection, _, raw in reader.messages() if reader.deserialize(raw, connection.msgtype))


@contextlib.contextmanager
def pure_python_ruamel() -> Iterator[None]:
    """ruamel.yaml without its C parser, as when ``ruamel.yaml.clib`` is not installed."""
    parser, ruamel.yaml.main.CParser = ruamel.yaml.main.CParser, None
    try:
        yield
    finally:
        ruamel.yaml.main.CParser = parser


def read_with_any_reader_pure_yaml(bag: Path) -> int:
    """Messages decoded as before 2026-12-06: AnyReader per bag, metadata parsed by pure-Python YAML."""
    with pure_python_ruamel():
        return read_with_any_reader(bag)


def decode(bag: Path) -> int:
    """Steps of the episode as the learner decodes it."""
    return decode_episode(bag, "0" * 64).steps


def written_bags(folder: Path, episodes: int, steps: int) -> list[Path]:
    """``episodes`` LWD episode bags like the simulated robots record: one 96x128 camera and two objects."""
    bags = []
    for index in range(episodes):
        bag = folder / f"episode-{index:04d}"
        write_episode_bag(bag, steps=steps, image_shape=(96, 128), objects=2, episode_id=f"ep{index}")
        bags.append(bag)
    return bags


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bags", type=Path, help="a folder searched for bags (folders with metadata.yaml)")
    parser.add_argument("--episodes", type=int, default=60, help="bags to read (and to write without --bags)")
    parser.add_argument("--steps", type=int, default=150, help="steps of each written bag")
    parser.add_argument("--blocks", type=int, default=3, help="interleaved blocks per row")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        if args.bags:
            bags = sorted(path.parent for path in args.bags.rglob("metadata.yaml"))[: args.episodes]
        else:
            bags = written_bags(Path(scratch), args.episodes, args.steps)
        if not bags:
            parser.error(f"no bags under {args.bags}")
        rows: dict[str, Callable[[Path], int]] = {
            "BagReader (shared typestore)": read_with_bag_reader,
            "AnyReader per bag, C YAML parser": read_with_any_reader,
            "AnyReader per bag, pure-Python YAML (before)": read_with_any_reader_pure_yaml,
            "decode_episode (whole learner decode)": decode,
        }
        seconds = dict.fromkeys(rows, 0.0)
        per_block = max(1, len(bags) // args.blocks)
        for block in range(args.blocks):
            chunk = bags[block * per_block : (block + 1) * per_block]
            for name, read in rows.items():
                start = time.perf_counter()
                for bag in chunk:
                    read(bag)
                seconds[name] += time.perf_counter() - start
        read_bags = per_block * args.blocks
        before = seconds["AnyReader per bag, pure-Python YAML (before)"]
        print(f"{read_bags} bags ({'from ' + str(args.bags) if args.bags else 'written here'}), {args.blocks} blocks")
        print()
        print("| reader | bags/s | ms/bag | time against before |")
        print("|---|---:|---:|---:|")
        for name in rows:
            print(
                f"| {name} | {read_bags / seconds[name]:.1f} | {1e3 * seconds[name] / read_bags:.1f} "
                f"| {seconds[name] / before:.2f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

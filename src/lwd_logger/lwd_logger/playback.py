"""Bag playback without ROS: which topics a bag plays under which names, and when each message is due.

``lwd bag play`` republishes a recorded episode on a live ROS 2 graph with its original timing.
This is the part that needs no rclpy: the name mapping (topic filter, namespace, remaps) and the
schedule (log-time order, rate, start offset, loop), timed by a :class:`Clock` so that tests can
check it without ROS and without sleeping. The rclpy host, :mod:`lwd_logger.ros_player`, only
creates the publishers and publishes the serialized bytes it is handed.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lwd_logger.bag_reader import BagInfo, BagReader
from lwd_logger.errors import PlaybackError

_TOKEN = r"[A-Za-z_][A-Za-z0-9_]*"
_ABSOLUTE_NAME = re.compile(rf"(/{_TOKEN})+")
_NAMESPACE = re.compile(rf"/?{_TOKEN}(/{_TOKEN})*")


class Clock(Protocol):
    """Monotonic time in ns and a way to wait for a moment of it: the schedule's only contact with real time."""

    def now_ns(self) -> int:
        """The current time in ns."""
        ...

    def sleep_until_ns(self, deadline_ns: int) -> None:
        """Return once ``now_ns()`` has reached ``deadline_ns`` (at once if it already has)."""
        ...


class WallClock:
    """The real monotonic clock; it waits with ``time.sleep``, so Ctrl-C interrupts a wait."""

    def now_ns(self) -> int:
        """``time.monotonic_ns()``."""
        return time.monotonic_ns()

    def sleep_until_ns(self, deadline_ns: int) -> None:
        """Sleep until the monotonic clock reaches ``deadline_ns``."""
        remaining = deadline_ns - time.monotonic_ns()
        if remaining > 0:
            time.sleep(remaining / 1e9)


@dataclass(frozen=True)
class PlaybackOptions:
    """What to play and how; :class:`Playback` validates every field."""

    topics: tuple[str, ...] = ()
    """Recorded topic names to play; empty plays every topic."""
    rate: float = 1.0
    """Speed factor, > 0: 2.0 plays twice as fast."""
    loop: bool = False
    """Start over after the last message, until interrupted."""
    remap: Mapping[str, str] = field(default_factory=dict)
    """Published name -> new absolute name; keys are names after the namespace is applied."""
    namespace: str = ""
    """Prefix of every published name (``robot_x``: ``/joint_states`` -> ``/robot_x/joint_states``)."""
    start_offset_s: float = 0.0
    """Seconds of the recording to skip, from its first message."""


@dataclass(frozen=True)
class PlayedTopic:
    """One topic to publish: the name it is published on, the recorded name it comes from, and its type."""

    name: str
    source: str
    msgtype: str


@dataclass(frozen=True)
class PlayedMessage:
    """One message, due now: published name, type, serialized CDR bytes as recorded, recorded log time in ns."""

    topic: str
    msgtype: str
    data: bytes
    log_time_ns: int


def parse_remaps(rules: Iterable[str]) -> dict[str, str]:
    """``["/a:=/b", ...]`` -> ``{"/a": "/b", ...}``; PlaybackError on a rule that is not FROM:=TO or a repeated FROM."""
    remap: dict[str, str] = {}
    for rule in rules:
        source, separator, target = rule.partition(":=")
        if not separator or not source or not target:
            raise PlaybackError(f"remap {rule!r} is not FROM:=TO (e.g. /joint_states:=/replay/joint_states)")
        if source in remap:
            raise PlaybackError(f"remap of {source} given twice")
        remap[source] = target
    return remap


class Playback:
    """A bag opened for playback: validated options, the topics it publishes, and its timed message stream."""

    def __init__(self, bag: str | Path, options: PlaybackOptions | None = None) -> None:
        """Open ``bag`` and check ``options`` against it; BagError if it is not a readable bag, PlaybackError if
        an option is invalid (rate, offset, namespace, remap) or names a topic the bag does not play."""
        self.reader = BagReader(bag)
        self.options = options or PlaybackOptions()
        rate, offset_s = self.options.rate, self.options.start_offset_s
        if not (math.isfinite(rate) and rate > 0):
            raise PlaybackError(f"rate must be a number > 0, got {rate}")
        duration_s = self.info.duration_ns / 1e9
        if not (math.isfinite(offset_s) and 0 <= offset_s <= duration_s):
            raise PlaybackError(f"start offset must be within the bag's 0..{duration_s:.3f} s, got {offset_s}")
        self.start_ns = self.info.start_time_ns + round(offset_s * 1e9)
        """Recorded log time that is played at the start of each pass."""
        self.topics = self._map_topics()
        """Recorded name -> the topic it is published as."""

    @property
    def info(self) -> BagInfo:
        """The bag's metadata."""
        return self.reader.info

    def _map_topics(self) -> dict[str, PlayedTopic]:
        recorded = self.info.message_counts
        sources = self.options.topics or tuple(sorted(recorded))
        unknown = sorted(set(sources) - set(recorded))
        if unknown:
            raise PlaybackError(f"topics {unknown} are not in {self.reader.path} (it has {sorted(recorded)})")
        if not sum(recorded[source] for source in sources):
            raise PlaybackError(f"nothing to play: {self.reader.path} has no messages on {sorted(sources)}")
        namespace = self.options.namespace.strip("/")
        if namespace and not _NAMESPACE.fullmatch(namespace):
            raise PlaybackError(f"namespace {self.options.namespace!r} is not a valid ROS 2 namespace")
        names = {source: f"/{namespace}/{source.lstrip('/')}" if namespace else source for source in sources}
        unknown = sorted(set(self.options.remap) - set(names.values()))
        if unknown:
            raise PlaybackError(
                f"remaps of {unknown} name no played topic (remap the published names: {sorted(names.values())})"
            )
        for target in self.options.remap.values():
            if not _ABSOLUTE_NAME.fullmatch(target):
                raise PlaybackError(f"remap target {target!r} is not an absolute ROS 2 topic name like /a/b")
        names = {source: self.options.remap.get(name, name) for source, name in names.items()}
        if len(set(names.values())) < len(names):
            clashes = sorted(name for name in set(names.values()) if list(names.values()).count(name) > 1)
            raise PlaybackError(f"two played topics would publish on the same name: {clashes}")
        return {source: PlayedTopic(names[source], source, self.info.topic_types[source]) for source in sources}

    def messages(self, clock: Clock) -> Iterator[PlayedMessage]:
        """Yield the played messages in log-time order, each once it is due on ``clock``; again and again with loop.

        A message recorded ``d`` ns after the start (first message plus offset) is due ``d / rate`` ns
        after the pass began; a pass begins when the previous one ends. A pass that plays nothing (the
        offset lies past the chosen topics' last message) ends playback, loop or not.
        """
        rate = self.options.rate
        while True:
            begin = clock.now_ns()
            played = 0
            for message in self.reader.raw_messages(self.topics):
                if message.log_time_ns < self.start_ns:
                    continue
                clock.sleep_until_ns(begin + round((message.log_time_ns - self.start_ns) / rate))
                played += 1
                yield PlayedMessage(self.topics[message.topic].name, message.msgtype, message.data, message.log_time_ns)
            if not (self.options.loop and played):
                return

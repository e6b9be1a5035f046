"""Counting the samples a recorder never received, from the publishers' sequence numbers.

Best-effort topics (cameras, joint states) drop samples silently when the recorder's CPU falls
behind. DDS numbers every sample a publisher writes; a gap between two numbers a subscriber
received from the same publisher is the number of samples it lost. The first sample only sets
the baseline (samples sent before the subscription matched are not losses), and so does a
number that does not increase (a restarted publisher counts from 1 again). rclpy's message info
does not say which publisher sent a sample, so only a topic with one publisher is counted, once
the host has said how many each has (:meth:`SampleLossCounter.set_publishers`).
"""

from __future__ import annotations


class SampleLossCounter:
    """Per topic, the samples lost since the last :meth:`take`, from gaps in each publisher's sequence."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._lost: dict[str, int] = {}
        self._single: set[str] | None = None

    def set_publishers(self, counts: dict[str, int]) -> None:
        """How many publishers each topic has now. Only a topic with exactly one is counted; any other count
        drops the topic's baseline, so that its next single publisher is not compared with another's numbers.
        Until the first call every topic is taken to have one."""
        self._single = {topic for topic, count in counts.items() if count == 1}
        for topic in set(self._last) - self._single:
            del self._last[topic]

    def observe(self, topic: str, sequence: int) -> int:
        """Note one received sample of ``topic``; returns how many samples it reveals as lost."""
        if self._single is not None and topic not in self._single:
            return 0
        last = self._last.get(topic)
        self._last[topic] = sequence
        if last is None or sequence <= last:
            return 0
        gap = sequence - last - 1
        if gap:
            self._lost[topic] = self._lost.get(topic, 0) + gap
        return gap

    def take(self) -> dict[str, int]:
        """The losses per topic counted since the previous call (topics without loss omitted), then reset."""
        lost, self._lost = self._lost, {}
        return dict(sorted(lost.items()))


def format_losses(lost: dict[str, int]) -> str:
    """``/topic=count,...`` as bag metadata stores it; ``""`` when nothing was lost."""
    return ",".join(f"{topic}={count}" for topic, count in sorted(lost.items()))

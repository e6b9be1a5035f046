"""Seed-paired comparison of two policies' binary outcomes (single rates: :mod:`lwd_interfaces.success_rate`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PairedComparison:
    """Two policies run on the same seeds: the seeds where only one succeeded, and the exact McNemar p-value.

    Seeds where both succeed or both fail say nothing about which policy is better; comparing the
    discordant seeds has more power than comparing two separate confidence intervals.
    """

    only_first: int
    only_second: int
    both: int
    neither: int
    p_value: float

    def __str__(self) -> str:
        p_value = "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.3f}"
        return f"{self.only_first} vs {self.only_second} ({p_value})"


def paired_comparison(pairs: Sequence[tuple[bool, bool]]) -> PairedComparison:
    """Compare two policies' outcomes on the same seeds, one ``(first, second)`` pair per seed.

    Two-sided exact McNemar test: if neither policy is better, each discordant seed is a fair coin.
    """
    only_first = sum(1 for first, second in pairs if first and not second)
    only_second = sum(1 for first, second in pairs if second and not first)
    both = sum(1 for first, second in pairs if first and second)
    discordant = only_first + only_second
    tail = sum(math.comb(discordant, k) for k in range(min(only_first, only_second) + 1))
    p_value = min(1.0, 2 * tail / 2**discordant)
    return PairedComparison(only_first, only_second, both, len(pairs) - discordant - both, p_value)

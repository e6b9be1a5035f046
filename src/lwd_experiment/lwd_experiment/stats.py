"""Success-rate statistics for small samples of binary outcomes, alone and paired by seed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """A success rate with its 95% Wilson score interval."""

    successes: int
    trials: int
    low: float
    high: float

    @property
    def value(self) -> float:
        """Point estimate; 0 when there were no trials."""
        return self.successes / self.trials if self.trials else 0.0

    def __str__(self) -> str:
        return f"{self.value:.0%} [{self.low:.0%}, {self.high:.0%}] ({self.successes}/{self.trials})"


def wilson_rate(successes: int, trials: int, z: float = 1.959964) -> Rate:
    """Success rate with the Wilson score interval, which stays inside [0, 1] and behaves at 0 and n."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if trials == 0:
        return Rate(0, 0, 0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Rate(successes, trials, max(0.0, centre - half), min(1.0, centre + half))


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

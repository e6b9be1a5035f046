"""Statistics of the experiment's comparisons (single rates: :mod:`lwd_interfaces.success_rate`).

- :func:`paired_comparison`: two policies on the same seeds, exact McNemar test (seed variance);
- :func:`mean_rate`: one arm's success over repeated training runs, with a Student-t interval across runs
  (training variance: each run trains its own base and learner);
- :func:`mean_gain`: one arm's success minus another's, run by run, with the same interval: arms that share a
  run's base and seeds vary together, so their difference varies less than either rate.
"""

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


@dataclass(frozen=True)
class MeanRate:
    """The mean of several runs' success rates with its 95% interval across runs (None for a single run)."""

    mean: float
    low: float | None
    high: float | None
    runs: int

    def __str__(self) -> str:
        if self.low is None or self.high is None:
            return f"{self.mean:.0%} (1 run)"
        return f"{self.mean:.0%} [{self.low:.0%}, {self.high:.0%}] ({self.runs} runs)"


def mean_rate(rates: Sequence[float], confidence: float = 0.95) -> MeanRate:
    """Mean of per-run success rates with a two-sided Student-t interval over the runs, clipped to [0, 1].

    The runs are the sample: mean ± t(1 − (1 − confidence)/2, n − 1) · s / √n with s the sample standard
    deviation. With few runs the interval is wide on purpose (t = 4.30 for 3 runs); it needs at least two.
    """
    mean, half = _t_interval(rates, confidence)
    if half is None:
        return MeanRate(mean, None, None, 1)
    return MeanRate(mean, max(0.0, mean - half), min(1.0, mean + half), len(rates))


@dataclass(frozen=True)
class MeanGain(MeanRate):
    """The mean over runs of one arm's success rate minus another's, with its 95% interval across runs
    (None for a single run), shown in signed percentage points."""

    def __str__(self) -> str:
        if self.low is None or self.high is None:
            return f"{self.mean * 100:+.0f} points (1 run)"
        return f"{self.mean * 100:+.0f} points [{self.low * 100:+.0f}, {self.high * 100:+.0f}] ({self.runs} runs)"


def mean_gain(differences: Sequence[float], confidence: float = 0.95) -> MeanGain:
    """Mean of per-run differences of two arms' success rates (each run's pair shares its base and seeds),
    with the Student-t interval of :func:`mean_rate`, unclipped: an interval above 0 says the first arm is
    better beyond what changes from one training run to the next."""
    mean, half = _t_interval(differences, confidence)
    if half is None:
        return MeanGain(mean, None, None, 1)
    return MeanGain(mean, mean - half, mean + half, len(differences))


def _t_interval(values: Sequence[float], confidence: float) -> tuple[float, float | None]:
    """The mean of ``values`` and the half-width of its Student-t interval (None for a single value)."""
    runs = len(values)
    if runs == 0:
        raise ValueError("an interval across runs needs at least one run")
    mean = sum(values) / runs
    if runs == 1:
        return mean, None
    deviation = math.sqrt(sum((value - mean) ** 2 for value in values) / (runs - 1))
    return mean, student_t_quantile(confidence, runs - 1) * deviation / math.sqrt(runs)


def student_t_quantile(confidence: float, df: int) -> float:
    """The t with P(|T| ≤ t) = ``confidence`` for Student's t with ``df`` degrees of freedom (bisection)."""
    if not 0.0 < confidence < 1.0 or df < 1:
        raise ValueError(f"need 0 < confidence < 1 and df >= 1, got {confidence} and {df}")
    low, high = 0.0, 1.0
    while _t_central(high, df) < confidence:
        low, high = high, 2 * high
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if _t_central(middle, df) < confidence else (low, middle)
    return (low + high) / 2


def _t_central(t: float, df: int) -> float:
    """P(|T| ≤ t) for Student's t with integer ``df``: the finite series of Abramowitz & Stegun 26.7.3/26.7.4."""
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2 == 0:
        term = total = 1.0
        for j in range(1, df // 2):
            term *= (2 * j - 1) / (2 * j) * cos2
            total += term
        return math.sin(theta) * total
    total = 0.0
    if df > 1:
        term = total = math.cos(theta)
        for j in range(1, (df - 1) // 2):
            term *= 2 * j / (2 * j + 1) * cos2
            total += term
    return 2 / math.pi * (theta + math.sin(theta) * total)

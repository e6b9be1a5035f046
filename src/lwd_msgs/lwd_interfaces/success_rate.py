"""Success rates of binary outcomes with their 95% Wilson score interval.

Used wherever a success rate is compared: the experiment's report and benches (``lwd_experiment``) and the
canary monitor that rolls a policy back (``lwd_fleet.canary``). It lives here, below both, so they share one
implementation.
"""

from __future__ import annotations

import math
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

"""Canary rollout: which robots try a new policy version first, and when the canary channel rolls back.

A new version goes to the canary channel first (the trainer publishes there when it is given a canary
channel), so only a share of the fleet runs it. A robot follows the canary channel when a stable hash of its
id, mapped to [0, 1), is below the configured canary share: every host computes the same assignment with no
coordination, a robot keeps its role from run to run, and a share of 0 keeps every robot on the stable channel.

The monitor compares the labelled success of the deployment episodes run on the canary version with those
run on the stable version (from the catalog; an episode that hot-swapped mid-way counts for neither), each
as a 95% Wilson interval, with a :class:`CanaryRule` (``window``, ``margin``):

- wait until each version has ``window`` labelled episodes;
- roll back when the canary's whole interval lies below the stable's by more than ``margin``
  (canary high < stable low - margin): the canary channel moves back to the stable version;
- promote when the canary is not worse on the estimate (canary rate >= stable rate - margin): the stable
  channel moves to the canary version;
- otherwise wait for more episodes: the intervals narrow until one of the two holds.

A rollback or promotion is logged in one line naming both versions, their rates and intervals, and written
to the store as a JSON record (:func:`lwd_fleet.layout.rollout_record`), the durable trace of the decision.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from lwd_interfaces.success_rate import Rate, wilson_rate

from lwd_fleet.catalog import Catalog
from lwd_fleet.layout import rollout_record
from lwd_fleet.publisher import PolicyPublisher

LOGGER = logging.getLogger(__name__)

CANARY_CHANNEL = "canary"
"""The default name of the channel that serves a new version to the canary robots."""
WAIT, ROLLBACK, PROMOTE = "wait", "rollback", "promote"
"""The monitor's decisions."""


def robot_fraction(robot_id: str) -> float:
    """Where a robot falls in [0, 1): the first 8 bytes of the sha256 of its id, as a fraction of 2**64."""
    return int.from_bytes(hashlib.sha256(robot_id.encode()).digest()[:8], "big") / 2**64


def follows_canary(robot_id: str, share: float) -> bool:
    """Whether ``robot_id`` is one of the canary robots of a fleet whose canary share is ``share`` (0..1)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"canary share must be in [0, 1], got {share}")
    return robot_fraction(robot_id) < share


def robot_channel(robot_id: str, stable: str, canary: str, share: float) -> str:
    """The channel a robot follows: ``canary`` when it is a canary robot under ``share``, else ``stable``."""
    return canary if follows_canary(robot_id, share) else stable


@dataclass(frozen=True)
class CanaryRule:
    """When the monitor decides: ``window`` labelled episodes per version at least, and a success-rate
    ``margin`` (a fraction, 0.05 = 5 points) the canary may fall short of the stable version by."""

    window: int = 30
    margin: float = 0.05

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"canary window must be >= 1 episode, got {self.window}")
        if not 0.0 <= self.margin < 1.0:
            raise ValueError(f"canary margin must be in [0, 1), got {self.margin}")


@dataclass(frozen=True)
class CanaryDecision:
    """What the monitor decided about a canary version against the stable one, and why."""

    action: str
    canary: str
    stable: str
    canary_rate: Rate
    stable_rate: Rate
    reason: str

    def record(self, rule: CanaryRule) -> dict[str, Any]:
        """The JSON record of the decision, as written to the store."""
        rates = {"canary": self.canary_rate, "stable": self.stable_rate}
        return {
            "action": self.action,
            "canary": self.canary,
            "stable": self.stable,
            **{
                f"{name}_rate": {"successes": r.successes, "labelled": r.trials, "low": r.low, "high": r.high}
                for name, r in rates.items()
            },
            "window": rule.window,
            "margin": rule.margin,
            "reason": self.reason,
            "decided_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }


def decide(canary: str, stable: str, canary_rate: Rate, stable_rate: Rate, rule: CanaryRule) -> CanaryDecision:
    """The rule of the module docstring, on the two versions' success rates (with their Wilson intervals)."""
    rates = f"canary {canary} {canary_rate} vs stable {stable} {stable_rate}, margin {rule.margin:.0%}"
    if min(canary_rate.trials, stable_rate.trials) < rule.window:
        action, why = WAIT, f"fewer than {rule.window} labelled episodes per version"
    elif canary_rate.high < stable_rate.low - rule.margin:
        action, why = ROLLBACK, "the canary's interval lies below the stable's by more than the margin"
    elif canary_rate.value >= stable_rate.value - rule.margin:
        action, why = PROMOTE, "the canary is not worse than the stable version"
    else:
        action, why = WAIT, "the intervals overlap and the canary's rate is below the stable's: more episodes"
    return CanaryDecision(action, canary, stable, canary_rate, stable_rate, f"{why}: {rates}")


class CanaryMonitor:
    """Checks the canary channel's version against the stable channel's and moves a channel when decided."""

    def __init__(
        self, publisher: PolicyPublisher, catalog: Catalog, stable_channel: str, canary_channel: str, rule: CanaryRule
    ) -> None:
        """Watch ``canary_channel`` against ``stable_channel`` of the publisher's store, on the catalog's episodes."""
        if stable_channel == canary_channel:
            raise ValueError(f"the canary channel must differ from the stable channel {stable_channel!r}")
        self.publisher = publisher
        self.catalog = catalog
        self.stable_channel = stable_channel
        self.canary_channel = canary_channel
        self.rule = rule

    def check(self) -> CanaryDecision | None:
        """Decide on the version the canary channel serves; None when there is nothing to compare (either channel
        missing, or the canary serving the stable version). A rollback or promotion moves its channel, is logged
        and recorded in the store."""
        canary = self.publisher.channel_version(self.canary_channel)
        stable = self.publisher.channel_version(self.stable_channel)
        if canary is None or stable is None or canary == stable:
            return None
        canary_rate = wilson_rate(*self.catalog.version_outcomes(canary))
        stable_rate = wilson_rate(*self.catalog.version_outcomes(stable))
        decision = decide(canary, stable, canary_rate, stable_rate, self.rule)
        if decision.action == ROLLBACK:
            self.publisher.move_channel(self.canary_channel, stable)
            LOGGER.warning("canary rollback: channel %s back to %s: %s", self.canary_channel, stable, decision.reason)
        elif decision.action == PROMOTE:
            self.publisher.move_channel(self.stable_channel, canary)
            LOGGER.info("canary promotion: channel %s now serves %s: %s", self.stable_channel, canary, decision.reason)
        else:
            LOGGER.debug("canary %s: waiting: %s", canary, decision.reason)
            return decision
        record = json.dumps(decision.record(self.rule), indent=2, sort_keys=True) + "\n"
        self.publisher.store.replace_bytes(rollout_record(canary), record.encode())
        return decision

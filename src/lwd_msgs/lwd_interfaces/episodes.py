"""The values an episode bag's ``lwd.outcome`` and ``lwd.episode_kind`` facts may take (docs/contracts.md).

They are part of the episode contract: the recorder writes them, the catalog and the learner's dataset
decoder read them. They live here, below every package that uses them, so each reads the same tuples.
"""

from __future__ import annotations

OUTCOMES = ("success", "failure", "incomplete")
"""Every ``lwd.outcome`` an episode may be committed with."""

COMPLETE_OUTCOMES = ("success", "failure")
"""Outcomes of a labelled episode; ``incomplete`` (no label, or recovered after a crash) is the other one."""

EPISODE_KINDS = ("demonstration", "deployment")
"""Every ``lwd.episode_kind``: the operator drove the whole episode, or the policy did with takeovers."""

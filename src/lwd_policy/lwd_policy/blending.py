"""Temporal ensembling of overlapping action chunks.

Each chunk is anchored at the control step of the observation it answers: its
row k is the action for step ``start_step + k``. Rows already in the past when
the chunk arrives are skipped (latency compensation). Where several chunks cover
a step, their rows are averaged with weights ``ramp(k) · exp(−decay · k)``: a
newer chunk (small k) dominates, but ramps in over ``ramp_steps`` steps so a
refill never jumps the command.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """One inference result in robot units, with its provenance."""

    chunk_id: int
    start_step: int
    actions: np.ndarray
    policy_version: str
    inference_latency: float
    stamp: float

    @property
    def end_step(self) -> int:
        """First step after the chunk."""
        return self.start_step + int(self.actions.shape[0])


@dataclass(frozen=True)
class BlendedAction:
    """The action for one step and the newest chunk that contributed to it."""

    action: np.ndarray
    chunk: Chunk


class ChunkBlender:
    """Holds the chunks that still cover future steps and blends them per step."""

    def __init__(self, decay: float = 0.1, ramp_steps: int = 3) -> None:
        if decay < 0 or not math.isfinite(decay):
            raise ValueError(f"decay must be a finite value >= 0, got {decay}")
        if ramp_steps < 1:
            raise ValueError(f"ramp_steps must be >= 1, got {ramp_steps}")
        self.decay = decay
        self.ramp_steps = ramp_steps
        self._entries: deque[tuple[Chunk, int]] = deque()

    def add(self, chunk: Chunk, arrival_step: int) -> None:
        """Queue a chunk that became available at control step ``arrival_step`` (chunks arrive in start order)."""
        if self._entries and chunk.start_step < self._entries[-1][0].start_step:
            raise ValueError(f"chunk {chunk.chunk_id} starts before the newest queued chunk")
        self._entries.append((chunk, max(arrival_step, chunk.start_step)))

    def clear(self) -> None:
        """Forget every chunk."""
        self._entries.clear()

    def remaining(self, step: int) -> int:
        """Steps from ``step`` on (inclusive) that some chunk still covers."""
        if not self._entries:
            return 0
        return max(0, max(chunk.end_step for chunk, _ in self._entries) - step)

    def action_at(self, step: int) -> BlendedAction | None:
        """The blended action for ``step``, or None when no chunk covers it; drops chunks that ended."""
        while self._entries and self._entries[0][0].end_step <= step:
            self._entries.popleft()
        covering = [(chunk, arrival) for chunk, arrival in self._entries if chunk.start_step <= step]
        if not covering:
            return None
        newest = covering[-1][0]
        if len(covering) == 1:
            return BlendedAction(action=newest.actions[step - newest.start_step].copy(), chunk=newest)
        total_weight = 0.0
        blended = np.zeros(newest.actions.shape[1], dtype=np.float64)
        for index, (chunk, arrival) in enumerate(covering):
            offset = step - chunk.start_step
            weight = math.exp(-self.decay * offset)
            if index > 0:
                weight *= min(1.0, (step - arrival + 1) / (self.ramp_steps + 1))
            blended += chunk.actions[offset] * weight
            total_weight += weight
        return BlendedAction(action=blended / total_weight, chunk=newest)

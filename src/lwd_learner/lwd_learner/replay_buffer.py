"""A fixed-capacity replay buffer of chunk transitions with a configurable sampling mix.

Episodes stream in as the trainer ingests them; when the buffer holds more than
``capacity`` transitions the oldest episodes are evicted whole. Every transition
belongs to one category: ``demo`` (from a demonstration episode), ``intervention``
(a deployment chunk the operator drove from its first step: it starts at a takeover
or inside an intervention) or ``autonomous`` (a chunk the policy started, even when
the operator takes over within it). A batch draws its category counts from the
configured mix (renormalized over the categories present), then rows uniformly within each.
``max_oversample`` bounds the mix: no category's share of a batch exceeds that many times its share of the
buffer, and the share it gives up goes to the other categories the mix asks for. Without the bound, a mix that
asks a quarter of every batch from the first few dozen intervention chunks replays each of them dozens of
times per update round, and the policy overfits them (BENCHMARKS.md, "the intervention share").
The buffer's position (which episodes, in which order, and the RNG) is a
JSON-serializable state dict, so a resumed trainer samples exactly as before.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from lwd_learner.dataset import ChunkTransitions

CATEGORIES = ("demo", "autonomous", "intervention")


@dataclass
class BufferSample:
    """A sampled batch of B transitions: the episode and category each row came from, and the rows."""

    episode_keys: list[str]
    category: np.ndarray
    transitions: ChunkTransitions


@dataclass
class _FlatIndex:
    """The held transitions as flat arrays: transition i is row ``row_of[i]`` of episode ``episode_of[i]``."""

    keys: list[str]
    transitions: list[ChunkTransitions]
    episode_of: np.ndarray
    row_of: np.ndarray
    category_of: np.ndarray
    rows_of: list[np.ndarray]
    held: np.ndarray


@dataclass
class _Entry:
    transitions: ChunkTransitions
    category: np.ndarray


class ReplayBuffer:
    """Holds at most ``capacity`` transitions (whole episodes, oldest evicted first) and samples by mix."""

    def __init__(self, capacity: int, mix: dict[str, float], seed: int = 0, max_oversample: float = math.inf) -> None:
        if capacity < 1:
            raise ValueError(f"replay buffer capacity must be >= 1, got {capacity}")
        if not max_oversample >= 1:
            raise ValueError(f"replay buffer max_oversample must be >= 1 (1: uniform), got {max_oversample}")
        unknown = set(mix) - set(CATEGORIES)
        if unknown or any(weight < 0 for weight in mix.values()) or sum(mix.values()) <= 0:
            raise ValueError(
                f"sampling mix needs non-negative weights over {CATEGORIES} with a positive sum, got {mix}"
            )
        self.capacity = capacity
        self.mix = {name: float(mix.get(name, 0.0)) for name in CATEGORIES}
        self.max_oversample = float(max_oversample)
        self._rng = np.random.default_rng(seed)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._index: _FlatIndex | None = None
        self._size = 0
        self.episodes_added = 0
        self.episodes_evicted = 0

    def __len__(self) -> int:
        return self._size

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def episode_keys(self) -> list[str]:
        """Keys of the held episodes, oldest first."""
        return list(self._entries)

    def add(self, key: str, transitions: ChunkTransitions, demonstration: bool) -> list[str]:
        """Add one episode's transitions under ``key``; returns the keys of the episodes evicted to make room."""
        if key in self._entries:
            raise ValueError(f"episode {key} is already in the replay buffer")
        if transitions.count == 0:
            raise ValueError(f"episode {key} has no transitions")
        if demonstration:
            category = np.zeros(transitions.count, dtype=np.int8)
        else:
            category = np.where(
                transitions.intervention, CATEGORIES.index("intervention"), CATEGORIES.index("autonomous")
            )
        self._entries[key] = _Entry(transitions, category.astype(np.int8))
        self._index = None
        self._size += transitions.count
        self.episodes_added += 1
        evicted = []
        while self._size > self.capacity and len(self._entries) > 1:
            old_key, old = self._entries.popitem(last=False)
            self._size -= old.transitions.count
            self.episodes_evicted += 1
            evicted.append(old_key)
        return evicted

    def composition(self) -> dict[str, int]:
        """Transitions held per category."""
        return dict(zip(CATEGORIES, self._flat_index().held.tolist(), strict=True))

    def batch_shares(self) -> dict[str, float]:
        """Each category's expected share of a batch (see :func:`bounded_shares`)."""
        shares = bounded_shares(self.mix, self._flat_index().held, self.max_oversample)
        return dict(zip(CATEGORIES, shares.tolist(), strict=True))

    def sample(self, batch_size: int, mix: dict[str, float] | None = None) -> BufferSample:
        """Draw ``batch_size`` transitions: category counts from ``mix`` (default: the buffer's), rows uniform within
        a category."""
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        index = self._flat_index()
        counts = self._rng.multinomial(batch_size, bounded_shares(mix or self.mix, index.held, self.max_oversample))
        chosen = np.concatenate([self._rng.choice(index.rows_of[i], size=n) for i, n in enumerate(counts) if n])
        return BufferSample(
            episode_keys=[index.keys[index.episode_of[flat]] for flat in chosen],
            category=index.category_of[chosen],
            transitions=ChunkTransitions.gather(
                [(index.transitions[index.episode_of[flat]], index.row_of[flat]) for flat in chosen]
            ),
        )

    def _flat_index(self) -> _FlatIndex:
        """Every held transition numbered in one sequence, rebuilt only after the held episodes changed: sampling
        and the per-update telemetry would otherwise walk every episode on every update."""
        if self._index is None:
            entries = list(self._entries.values())
            counts = np.array([e.transitions.count for e in entries], dtype=np.int64)
            category_of = np.concatenate([np.zeros(0, dtype=np.int8), *(e.category for e in entries)])
            self._index = _FlatIndex(
                keys=list(self._entries),
                transitions=[e.transitions for e in entries],
                episode_of=np.repeat(np.arange(len(entries)), counts),
                row_of=np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts),
                category_of=category_of,
                rows_of=[np.flatnonzero(category_of == i) for i in range(len(CATEGORIES))],
                held=np.bincount(category_of, minlength=len(CATEGORIES)),
            )
        return self._index

    def state_dict(self) -> dict:
        """The buffer's position as JSON-serializable data: held episode keys (oldest first), counters, RNG."""
        return {
            "episode_keys": self.episode_keys(),
            "episodes_added": self.episodes_added,
            "episodes_evicted": self.episodes_evicted,
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore counters and RNG; the same episodes must already have been re-added in the same order."""
        if state["episode_keys"] != self.episode_keys():
            raise ValueError(
                f"replay buffer holds {len(self._entries)} episodes that differ from the {len(state['episode_keys'])} "
                "in the saved state; re-add the saved episodes in order before loading it"
            )
        self.episodes_added = int(state["episodes_added"])
        self.episodes_evicted = int(state["episodes_evicted"])
        self._rng.bit_generator.state = state["rng"]


def bounded_shares(mix: dict[str, float], held: np.ndarray, max_oversample: float) -> np.ndarray:
    """Batch shares of the ``CATEGORIES``, given the transitions ``held`` of each: the mix over the categories
    held, where no share exceeds ``max_oversample`` times the category's share of the buffer; a category the
    bound holds back gives its excess to the other categories the mix asks for, in the mix's proportions. When
    those cannot take it all, the bound is dropped rather than drawing from a category the mix leaves out."""
    held = np.asarray(held, dtype=float)
    if held.sum() == 0:
        raise ValueError("an empty replay buffer has no batch shares")
    wanted = np.array([mix.get(name, 0.0) for name in CATEGORIES]) * (held > 0)
    if wanted.sum() == 0:
        wanted = (held > 0).astype(float)
    free = wanted > 0
    cap = max_oversample * held / held.sum() if math.isfinite(max_oversample) else np.ones(len(CATEGORIES))
    if cap[free].sum() < 1:
        return wanted / wanted.sum()
    shares = np.zeros(len(CATEGORIES))
    while free.any():
        trial = (1 - shares.sum()) * wanted * free / wanted[free].sum()
        over = free & (trial > cap + 1e-12)
        if not over.any():
            shares[free] = trial[free]
            break
        shares[over] = cap[over]
        free &= ~over
    return shares / shares.sum()

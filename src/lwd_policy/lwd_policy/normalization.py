"""Proprioception and action statistics that map robot units to the model's normalized space.

The model trains and samples in a normalized space (zero mean / unit std, or
[-1, 1] for min/max), which keeps the flow's Gaussian noise on the same scale
for every joint. The statistics ship with each checkpoint as ``normalization.json``.
Works on numpy arrays and torch tensors alike (the last axis is the joint axis).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

NORMALIZATION_FORMAT = 1
MODES = ("mean_std", "min_max")
_EPS = 1e-6

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


class NormalizationError(ValueError):
    """Statistics are malformed, or data does not match their dimension."""


@dataclass(frozen=True)
class Stats:
    """Per-dimension shift and scale: ``normalized = (x - shift) / scale``."""

    shift: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        shift = np.asarray(self.shift, dtype=np.float64).reshape(-1)
        scale = np.asarray(self.scale, dtype=np.float64).reshape(-1)
        if shift.shape != scale.shape:
            raise NormalizationError(f"shift has {shift.size} values but scale has {scale.size}")
        if not (np.all(np.isfinite(shift)) and np.all(np.isfinite(scale))):
            raise NormalizationError("statistics contain NaN or infinity")
        if np.any(scale <= 0):
            raise NormalizationError("every scale must be > 0")
        object.__setattr__(self, "shift", shift)
        object.__setattr__(self, "scale", scale)

    @property
    def dim(self) -> int:
        """Number of dimensions these stats cover."""
        return int(self.shift.size)

    def forward(self, x: ArrayT) -> ArrayT:
        """Robot units → normalized."""
        shift, scale = self._like(x)
        return (x - shift) / scale

    def inverse(self, x: ArrayT) -> ArrayT:
        """Normalized → robot units."""
        shift, scale = self._like(x)
        return x * scale + shift

    def _like(self, x: ArrayT) -> tuple[Any, Any]:
        if x.shape[-1] != self.dim:
            raise NormalizationError(f"data has {x.shape[-1]} values per row, statistics have {self.dim}")
        if isinstance(x, torch.Tensor):
            return (
                torch.as_tensor(self.shift, dtype=x.dtype, device=x.device),
                torch.as_tensor(self.scale, dtype=x.dtype, device=x.device),
            )
        return self.shift.astype(x.dtype, copy=False), self.scale.astype(x.dtype, copy=False)


def _stats_from_data(data: np.ndarray, mode: str) -> Stats:
    rows = np.asarray(data, dtype=np.float64)
    rows = rows.reshape(-1, rows.shape[-1])
    if rows.shape[0] == 0:
        raise NormalizationError("cannot compute statistics from zero rows")
    if not np.all(np.isfinite(rows)):
        raise NormalizationError("data contains NaN or infinity")
    if mode == "mean_std":
        return Stats(shift=rows.mean(axis=0), scale=np.maximum(rows.std(axis=0), _EPS))
    low, high = rows.min(axis=0), rows.max(axis=0)
    return Stats(shift=(high + low) / 2.0, scale=np.maximum((high - low) / 2.0, _EPS))


class Normalizer:
    """Proprio and action statistics, to and from the model's normalized space.

    ``mode`` is ``mean_std`` (zero mean, unit std) or ``min_max`` (data range → [-1, 1]).
    """

    def __init__(self, proprio: Stats, action: Stats, mode: str = "mean_std") -> None:
        if mode not in MODES:
            raise NormalizationError(f"unknown normalization mode {mode!r}, expected one of {MODES}")
        self.proprio = proprio
        self.action = action
        self.mode = mode

    @classmethod
    def from_data(cls, proprio: np.ndarray, actions: np.ndarray, mode: str = "mean_std") -> Normalizer:
        """Statistics of a dataset: ``proprio [..., P]`` and ``actions [..., D]`` in robot units."""
        if mode not in MODES:
            raise NormalizationError(f"unknown normalization mode {mode!r}, expected one of {MODES}")
        return cls(_stats_from_data(proprio, mode), _stats_from_data(actions, mode), mode)

    @classmethod
    def identity(cls, proprio_dim: int, action_dim: int) -> Normalizer:
        """Statistics that leave data unchanged (an untrained policy's placeholder)."""
        return cls(
            Stats(np.zeros(proprio_dim), np.ones(proprio_dim)),
            Stats(np.zeros(action_dim), np.ones(action_dim)),
            "mean_std",
        )

    def normalize_proprio(self, x: ArrayT) -> ArrayT:
        """Joint positions in robot units → normalized proprio."""
        return self.proprio.forward(x)

    def normalize_action(self, x: ArrayT) -> ArrayT:
        """Actions in robot units → normalized actions (the flow's data space)."""
        return self.action.forward(x)

    def unnormalize_action(self, x: ArrayT) -> ArrayT:
        """Normalized actions (flow samples) → robot units."""
        return self.action.inverse(x)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "format": NORMALIZATION_FORMAT,
            "mode": self.mode,
            "proprio": {"shift": self.proprio.shift.tolist(), "scale": self.proprio.scale.tolist()},
            "action": {"shift": self.action.shift.tolist(), "scale": self.action.scale.tolist()},
        }

    def to_json(self) -> str:
        """Canonical JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Normalizer:
        """Parse ``to_dict`` output, refusing anything malformed with NormalizationError."""
        try:
            if body.get("format") != NORMALIZATION_FORMAT:
                raise NormalizationError(f"unsupported normalization format {body.get('format')!r}")
            return cls(
                Stats(np.asarray(body["proprio"]["shift"]), np.asarray(body["proprio"]["scale"])),
                Stats(np.asarray(body["action"]["shift"]), np.asarray(body["action"]["scale"])),
                str(body["mode"]),
            )
        except NormalizationError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise NormalizationError(f"malformed normalization statistics: {error}") from error

    @classmethod
    def from_json(cls, text: str | bytes) -> Normalizer:
        """Parse ``to_json`` output."""
        try:
            body = json.loads(text)
        except ValueError as error:
            raise NormalizationError(f"normalization statistics are not valid JSON: {error}") from error
        return cls.from_dict(body)

"""Frozen-encoder features of the frames the learner reads, cached by (bag sha256, encoder version).

Online updates train only the action expert and the value/critic heads on top of
the encoder that BC pretraining produced (docs/method.md, "What trains when"). The
encoder is therefore run at most once per recorded frame, and only on the frames a
transition reads: each chunk's first frame and its bootstrap frame, about one frame
in H (``ChunkTransitions.observed_frames``). Running it on every frame spent about
17 of every 18 encoder passes on frames nothing reads, and most of the trainer's
first scan of a fleet store. An episode's features are stored as one safetensors
file ``<sha256>.<encoder_version>.safetensors`` (its ``frames`` and their
``features``) and kept in memory while the episode is in the replay buffer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lwd_policy.contract import PolicyModel
from lwd_policy.normalization import Normalizer
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lwd_learner.dataset import Episode
from lwd_learner.observations import TextEmbedder, observation_batch

_VERSION_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


@dataclass(frozen=True)
class EncodedFrames:
    """Encoder features of some frames of one episode of ``steps`` frames: ``values[i]`` belongs to frame
    ``frames[i]`` (``frames`` sorted, without repeats)."""

    frames: np.ndarray
    values: torch.Tensor
    steps: int

    def covers(self, frames: np.ndarray) -> bool:
        """Whether every frame in ``frames`` is encoded."""
        return bool(np.isin(frames, self.frames).all())

    def row(self, frame: int) -> torch.Tensor:
        """The features ``[F]`` of one frame; KeyError for a frame that was not encoded."""
        index = int(np.searchsorted(self.frames, frame))
        if index == len(self.frames) or self.frames[index] != frame:
            raise KeyError(f"frame {frame} of this episode was not encoded")
        return self.values[index]


class FeatureCache:
    """Encoder features of the frames of each episode the learner reads, computed once with the frozen
    ``model.encode``."""

    def __init__(
        self,
        cache_dir: str | Path,
        model: PolicyModel,
        normalizer: Normalizer,
        embedder: TextEmbedder,
        encoder_version: str,
        batch_size: int = 64,
    ) -> None:
        if not encoder_version or not set(encoder_version) <= _VERSION_CHARS:
            raise ValueError(
                f"encoder_version must be lowercase letters, digits, '-', '_' or '.', got {encoder_version!r}"
            )
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.model = model
        self.normalizer = normalizer
        self.embedder = embedder
        self.encoder_version = encoder_version
        self.batch_size = batch_size
        self._memory: dict[str, EncodedFrames] = {}
        self.frames_encoded = 0
        self.disk_hits = 0

    def path_for(self, key: str) -> Path:
        """The cache file of one episode's features under this encoder version."""
        return self.cache_dir / f"{key}.{self.encoder_version}.safetensors"

    def features(self, episode: Episode, frames: np.ndarray) -> EncodedFrames:
        """Features of at least ``frames`` of ``episode``: from memory, disk, or the frozen encoder (which runs
        only on the frames not cached yet)."""
        frames = np.unique(np.asarray(frames, dtype=np.int64))
        if not len(frames) or frames[0] < 0 or frames[-1] >= episode.steps:
            raise ValueError(f"need frames in [0, {episode.steps}), got {frames.tolist()}")
        path = self.path_for(episode.key)
        cached = self._memory.get(episode.key) or self._read(path, episode.steps)
        if cached is not None and cached.covers(frames):
            if episode.key not in self._memory:
                self.disk_hits += 1
            self._memory[episode.key] = cached
            return cached
        missing = frames if cached is None else np.setdiff1d(frames, cached.frames)
        encoded = EncodedFrames(missing, self._encode(episode, missing), episode.steps)
        if cached is not None:
            encoded = _merged(cached, encoded)
        self._write(path, encoded)
        self._memory[episode.key] = encoded
        return encoded

    def forget(self, key: str) -> None:
        """Drop an episode's features from memory (after the replay buffer evicted it); the file stays."""
        self._memory.pop(key, None)

    @torch.no_grad()
    def _encode(self, episode: Episode, frames: np.ndarray) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        try:
            parts = []
            for start in range(0, len(frames), self.batch_size):
                batch = observation_batch(
                    episode, frames[start : start + self.batch_size], self.model.config, self.normalizer, self.embedder
                )
                parts.append(self.model.encode(batch).float())
        finally:
            self.model.train(was_training)
        self.frames_encoded += len(frames)
        return torch.cat(parts).contiguous()

    @staticmethod
    def _read(path: Path, steps: int) -> EncodedFrames | None:
        if not path.is_file():
            return None
        try:
            stored = load_file(str(path))
            frames, values = stored["frames"].numpy(), stored["features"]
        except (SafetensorError, OSError, KeyError, ValueError):
            return None
        valid = (
            frames.ndim == 1
            and values.ndim == 2
            and len(frames) == values.shape[0]
            and bool((np.diff(frames) > 0).all())
            and (not len(frames) or (frames[0] >= 0 and frames[-1] < steps))
            and bool(torch.isfinite(values).all())
        )
        return EncodedFrames(frames, values, steps) if valid else None

    @staticmethod
    def _write(path: Path, encoded: EncodedFrames) -> None:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file({"frames": torch.from_numpy(encoded.frames), "features": encoded.values}, str(temporary))
        os.replace(temporary, path)


def _merged(first: EncodedFrames, second: EncodedFrames) -> EncodedFrames:
    """The frames of both, in frame order (they encode disjoint frames of one episode)."""
    frames = np.concatenate([first.frames, second.frames])
    order = np.argsort(frames, kind="stable")
    return EncodedFrames(frames[order], torch.cat([first.values, second.values])[torch.from_numpy(order)], first.steps)

"""Frozen-encoder features per frame, cached by (bag sha256, frame, encoder version).

Online updates train only the action expert and the value/critic heads on top of
the encoder that BC pretraining produced (docs/method.md, "What trains when"). The
encoder is therefore run once per recorded frame: features of all T frames of an
episode are stored as one safetensors file ``<sha256>.<encoder_version>.safetensors``
(row t = frame t) and kept in memory while the episode is in the replay buffer.
"""

from __future__ import annotations

import os
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


class FeatureCache:
    """Encoder features ``[T, F]`` of each episode, computed once with the frozen ``model.encode``."""

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
        self._memory: dict[str, torch.Tensor] = {}
        self.frames_encoded = 0
        self.disk_hits = 0

    def path_for(self, key: str) -> Path:
        """The cache file of one episode's features under this encoder version."""
        return self.cache_dir / f"{key}.{self.encoder_version}.safetensors"

    def features(self, episode: Episode) -> torch.Tensor:
        """Features of every frame of ``episode`` ``[T, F]``: from memory, disk, or the frozen encoder."""
        cached = self._memory.get(episode.key)
        if cached is not None:
            return cached
        path = self.path_for(episode.key)
        features = self._read(path, episode.steps)
        if features is None:
            features = self._encode(episode)
            self._write(path, features)
        else:
            self.disk_hits += 1
        self._memory[episode.key] = features
        return features

    def forget(self, key: str) -> None:
        """Drop an episode's features from memory (after the replay buffer evicted it); the file stays."""
        self._memory.pop(key, None)

    @torch.no_grad()
    def _encode(self, episode: Episode) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        try:
            parts = []
            for start in range(0, episode.steps, self.batch_size):
                frames = np.arange(start, min(start + self.batch_size, episode.steps))
                batch = observation_batch(episode, frames, self.model.config, self.normalizer, self.embedder)
                parts.append(self.model.encode(batch).float())
        finally:
            self.model.train(was_training)
        self.frames_encoded += episode.steps
        return torch.cat(parts).contiguous()

    @staticmethod
    def _read(path: Path, steps: int) -> torch.Tensor | None:
        if not path.is_file():
            return None
        try:
            features = load_file(str(path))["features"]
        except (SafetensorError, OSError, KeyError, ValueError):
            return None
        if features.shape[0] != steps or not bool(torch.isfinite(features).all()):
            return None
        return features

    @staticmethod
    def _write(path: Path, features: torch.Tensor) -> None:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file({"features": features}, str(temporary))
        os.replace(temporary, path)

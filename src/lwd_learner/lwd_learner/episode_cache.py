"""Decoded episodes cached on disk as npz, keyed by the bag's manifest sha256.

Decoding a bag (CDR deserialization of every image) is the slow part of ingest;
the cache makes a trainer restart skip it. Files are written atomically and read
with ``allow_pickle=False``; a damaged cache file is decoded again, never trusted.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np
from lwd_policy.proprio import no_object_poses

from lwd_learner.dataset import Episode, decode_episode

LOGGER = logging.getLogger(__name__)
_FACTS = ("episode_id", "robot_id", "task", "instruction", "episode_kind", "outcome")


class EpisodeCache:
    """Load an episode from ``<cache_dir>/<sha256>.npz`` or decode its bag and store it there."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.decoded = 0
        self.hits = 0

    @classmethod
    def under(cls, learner_cache: str | Path) -> EpisodeCache:
        """The decoded-episode cache inside a learner cache folder (``lwd train bc`` and ``serve --cache-dir``)."""
        return cls(Path(learner_cache) / "episodes")

    def path_for(self, key: str) -> Path:
        """Cache file of the episode whose manifest sha256 is ``key``."""
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"episode cache key must be a lowercase hex sha256, got {key!r}")
        return self.cache_dir / f"{key}.npz"

    def load(self, bag_dir: str | Path, key: str, cameras: tuple[str, ...] | None = None) -> Episode:
        """The episode of ``bag_dir``: from the cache when present and readable, else decoded and cached."""
        path = self.path_for(key)
        if path.is_file():
            try:
                episode = self._read(path, key)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
                LOGGER.warning("episode cache %s unreadable (%s); decoding the bag again", path, error)
            else:
                if cameras is None or set(cameras) <= set(episode.cameras):
                    self.hits += 1
                    return episode
        episode = decode_episode(bag_dir, key, cameras)
        self._write(path, episode)
        self.decoded += 1
        return episode

    def _write(self, path: Path, episode: Episode) -> None:
        facts = {name: getattr(episode, name) for name in _FACTS}
        facts["cameras"] = list(episode.cameras)
        facts["terminal"] = episode.terminal
        arrays = {
            "facts": np.asarray(json.dumps(facts)),
            "stamps": episode.stamps,
            "proprio": episode.proprio,
            "actions": episode.actions,
            "intervention": episode.intervention,
            "policy_version": episode.policy_version,
            "object_poses": episode.object_poses
            if episode.object_poses is not None
            else no_object_poses((episode.steps,)),
        }
        arrays.update({f"image.{name}": frames for name, frames in episode.images.items()})
        temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
        with open(temporary, "wb") as stream:
            np.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)

    @staticmethod
    def _read(path: Path, key: str) -> Episode:
        with np.load(path, allow_pickle=False) as data:
            facts = json.loads(str(data["facts"]))
            cameras = tuple(facts["cameras"])
            return Episode(
                key=key,
                cameras=cameras,
                stamps=data["stamps"],
                images={name: data[f"image.{name}"] for name in cameras},
                proprio=data["proprio"],
                actions=data["actions"],
                intervention=data["intervention"],
                policy_version=data["policy_version"],
                object_poses=data["object_poses"],
                terminal=bool(facts["terminal"]),
                **{name: str(facts[name]) for name in _FACTS},
            )

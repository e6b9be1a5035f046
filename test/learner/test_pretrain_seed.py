"""BC pretraining's seed is a real parameter: the same seed gives the same base, another seed another base
(the independent bases of ``bench/learning.py --repeats``)."""

from __future__ import annotations

import torch
from lwd_learner.episode_cache import EpisodeCache
from lwd_learner.pretrain import find_episode_folders, load_episodes, pretrain_bc
from lwd_learner.pretrain_config import PretrainConfig
from lwd_policy.config import VLAConfig

from .conftest import TINY_VLA, HashEmbedder, commit_episode


def test_the_seed_decides_the_trained_base(tmp_path):
    store = tmp_path / "store"
    commit_episode(store, "demo0", steps=16, kind="demonstration", image_shape=(16, 16))
    vla = VLAConfig.from_dict(TINY_VLA)
    episodes = load_episodes(find_episode_folders(f"file://{store}"), EpisodeCache(tmp_path / "cache"), vla.cameras)

    def weights(seed: int) -> dict[str, torch.Tensor]:
        model, _ = pretrain_bc(episodes, vla, HashEmbedder(), PretrainConfig(steps=2, batch_size=4, seed=seed))
        return model.state_dict()

    first, again, other = weights(0), weights(0), weights(1)
    assert all(torch.equal(first[name], again[name]) for name in first), "one seed, one base"
    assert any(not torch.equal(first[name], other[name]) for name in first), "another seed, another base"

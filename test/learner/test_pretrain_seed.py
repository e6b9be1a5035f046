"""BC pretraining's seed is a real parameter: the same seed gives the same base, another seed another base
(the independent bases of ``bench/learning.py --repeats``); the order the store lists the episodes in does not."""

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


def test_the_order_of_the_episodes_does_not_change_the_base(tmp_path):
    """Two recordings of the same demonstrations list them in different orders (robots take jobs as they free up)."""
    store = tmp_path / "store"
    commit_episode(store, "demo0", steps=16, kind="demonstration", image_shape=(16, 16))
    commit_episode(store, "demo1", steps=12, kind="demonstration", image_shape=(16, 16), task="insertion")
    commit_episode(store, "demo2", steps=14, kind="demonstration", image_shape=(16, 16), outcome="failure")
    vla = VLAConfig.from_dict(TINY_VLA)
    episodes = load_episodes(find_episode_folders(f"file://{store}"), EpisodeCache(tmp_path / "cache"), vla.cameras)

    def weights(order: list) -> dict[str, torch.Tensor]:
        model, _ = pretrain_bc(order, vla, HashEmbedder(), PretrainConfig(steps=3, batch_size=4, seed=0))
        return model.state_dict()

    listed, reversed_ = weights(episodes), weights(episodes[::-1])
    assert all(torch.equal(listed[name], reversed_[name]) for name in listed)

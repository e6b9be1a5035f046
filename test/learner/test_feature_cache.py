"""The frozen encoder runs only on the frames transitions read, once each, and a batch's features are those frames'."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lwd_learner.dataset import decode_episode
from lwd_learner.feature_cache import FeatureCache
from lwd_learner.observations import observation_batch
from lwd_learner.trainer import TrainerConfig, TrainerService
from safetensors.torch import save_file

from .conftest import HashEmbedder, write_episode_bag


def service(store, work) -> TrainerService:
    config = TrainerConfig(store_url=f"file://{store}", work_dir=work, batch_size=16, agent={"hidden_dim": 32})
    return TrainerService(config, lambda checkpoint: HashEmbedder())


@torch.no_grad()
def encoded_now(trainer: TrainerService, episode, frames: np.ndarray) -> torch.Tensor:
    model = trainer.pretrained.model.eval()
    return model.encode(observation_batch(episode, frames, model.config, trainer.pretrained.normalizer, HashEmbedder()))


def test_the_trainer_encodes_only_the_frames_its_transitions_read_and_batches_hold_their_features(
    tmp_path, fleet_store
):
    trainer = service(fleet_store, tmp_path / "work")
    assert trainer.ingest_new() == 3
    steps = sum(entry.features.steps for entry in trainer.buffered.values())
    read = sum(len(entry.features.frames) for entry in trainer.buffered.values())
    assert trainer.features.frames_encoded == read < steps / 2  # horizon 4: about one frame in four

    sample = trainer.buffer.sample(16)
    trainer.buffer.sample = lambda size, mix=None: sample
    batch = trainer.sample_batch()
    episodes = {key: trainer.episodes.load(entry["local"], key) for key, entry in _ingested(trainer).items()}
    for row, key in enumerate(sample.episode_keys):
        for features, frame in (
            (batch.features, sample.transitions.obs_index),
            (batch.next_features, sample.transitions.next_obs_index),
        ):
            expected = encoded_now(trainer, episodes[key], np.array([frame[row]]))[0]
            torch.testing.assert_close(features[row], expected, rtol=1e-5, atol=1e-5)
    trainer.close()


def _ingested(trainer: TrainerService) -> dict[str, dict[str, str]]:
    return {entry["key"]: entry for entry in trainer.ledger.values() if entry["status"] == "ingested"}


def test_more_frames_encode_only_the_new_ones_and_a_fresh_cache_reads_them_from_disk(tmp_path, fleet_store):
    trainer = service(fleet_store, tmp_path / "work")
    episode = decode_episode(write_episode_bag(tmp_path / "bag", steps=12, image_shape=(16, 16)), "k" * 64)
    cache = FeatureCache(
        tmp_path / "features", trainer.pretrained.model, trainer.pretrained.normalizer, HashEmbedder(), "enc1"
    )
    first = cache.features(episode, np.array([8, 0, 8]))
    assert first.frames.tolist() == [0, 8] and cache.frames_encoded == 2
    both = cache.features(episode, np.array([0, 4, 8, 11]))
    assert both.frames.tolist() == [0, 4, 8, 11] and cache.frames_encoded == 4
    torch.testing.assert_close(both.row(0), first.row(0))
    torch.testing.assert_close(both.row(4), encoded_now(trainer, episode, np.array([4]))[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(KeyError, match="frame 5"):
        both.row(5)

    fresh = FeatureCache(
        tmp_path / "features", trainer.pretrained.model, trainer.pretrained.normalizer, HashEmbedder(), "enc1"
    )
    again = fresh.features(episode, np.array([4, 11]))
    assert fresh.frames_encoded == 0 and fresh.disk_hits == 1
    assert torch.equal(again.values, both.values)
    with pytest.raises(ValueError, match=r"frames in \[0, 12\)"):
        fresh.features(episode, np.array([12]))
    trainer.close()


def test_a_cache_file_without_frame_indices_is_encoded_again_not_misread(tmp_path, fleet_store):
    trainer = service(fleet_store, tmp_path / "work")
    episode = decode_episode(write_episode_bag(tmp_path / "bag", steps=6, image_shape=(16, 16)), "k" * 64)
    cache = FeatureCache(
        tmp_path / "features", trainer.pretrained.model, trainer.pretrained.normalizer, HashEmbedder(), "enc1"
    )
    save_file({"features": torch.zeros(6, 32)}, str(cache.path_for(episode.key)))  # one row per frame, no indices
    encoded = cache.features(episode, np.array([0, 4]))
    assert cache.frames_encoded == 2 and cache.disk_hits == 0 and bool(encoded.values.abs().sum() > 0)
    trainer.close()

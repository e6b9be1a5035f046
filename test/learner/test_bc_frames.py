"""BC's frame table: a batch gathered from it is exactly what building each frame from its episode gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lwd_learner.bc_frames import Frames, FrameTable
from lwd_learner.dataset import action_chunks, decode_episode, operator_chunk_mask
from lwd_learner.observations import episode_state, observation_batch
from lwd_policy.config import VLAConfig
from lwd_policy.contract import build_policy
from lwd_policy.normalization import Normalizer

from .conftest import TINY_VLA, HashEmbedder, write_episode_bag

KEY = "cd" * 32
CONFIG = VLAConfig.from_dict({**TINY_VLA, "perceived_objects": 1})


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    """A demonstration with object poses, a deployment with a takeover at steps 3-4 (insertion, another
    instruction), and a replay without object poses."""
    root = tmp_path_factory.mktemp("frames")
    bags = [
        write_episode_bag(root / "demo", steps=9, kind="demonstration", image_shape=(16, 16), objects=1),
        write_episode_bag(
            root / "deployment",
            steps=10,
            intervention_steps=(3, 4),
            image_shape=(16, 16),
            objects=1,
            episode_id="ep1",
            task="insertion",
        ),
        write_episode_bag(
            root / "replay", steps=6, outcome="failure", kind="demonstration", image_shape=(20, 20), episode_id="ep2"
        ),
    ]
    return [decode_episode(bag, KEY) for bag in bags]


@pytest.fixture(scope="module")
def table(episodes):
    normalizer = Normalizer.from_data(
        np.concatenate([episode_state(e, np.arange(e.steps), CONFIG) for e in episodes]),
        np.concatenate([e.actions for e in episodes]),
    )
    parts = [Frames(0, np.arange(9)), Frames(1, np.array([3, 4])), Frames(2, np.arange(6), cloned=False)]
    return FrameTable(episodes, parts, CONFIG, normalizer, HashEmbedder()), normalizer


def test_a_batch_equals_each_frame_built_from_its_episode(episodes, table):
    frames, normalizer = table
    rows = np.array([16, 0, 10, 9, 4, 12, 10])
    batch = frames.batch(rows)
    embedder = HashEmbedder()
    for position, row in enumerate(rows):
        episode, step = episodes[frames.episode[row]], np.array([frames.frame[row]])
        expected = observation_batch(episode, step, CONFIG, normalizer, embedder)
        torch.testing.assert_close(batch.observations.proprio[position], expected.proprio[0])
        embedding = batch.observations.instruction_embedding[position]
        torch.testing.assert_close(embedding, expected.instruction_embedding[0])
        assert torch.equal(batch.observations.images["top"][position], expected.images["top"][0])
        chunk = normalizer.normalize_action(action_chunks(episode, step, CONFIG.horizon)[0][0])
        torch.testing.assert_close(batch.actions[position], torch.from_numpy(np.asarray(chunk, dtype=np.float32)))
        cloned = frames.episode[row] != 2
        mask = operator_chunk_mask(episode, step, CONFIG.horizon)[0] & cloned
        assert batch.mask[position].tolist() == mask.tolist()
        if episode.object_poses is None or not episode.object_poses.shape[1]:
            assert torch.isnan(batch.positions[position]).all()
        else:
            expected_positions = torch.from_numpy(episode.object_poses[step[0], :, :3].astype(np.float32))
            torch.testing.assert_close(batch.positions[position], expected_positions)
    assert batch.perception is None


def test_rows_hold_the_parts_frames_and_are_drawn_uniformly(table):
    frames, _ = table
    assert len(frames) == 17
    assert frames.frame[9:11].tolist() == [3, 4] and set(frames.episode[11:]) == {2}
    drawn = frames.draw(np.random.default_rng(0), 17_000)
    counts = np.bincount(drawn, minlength=len(frames))
    assert drawn.min() >= 0 and counts.min() > 800 and counts.max() < 1200


def test_computed_perception_replaces_the_images(table):
    frames, _ = table
    perception = torch.arange(len(frames), dtype=torch.float32)[:, None].expand(-1, 5)
    batch = frames.batch(np.array([5, 1, 14]), perception)
    assert batch.observations.images == {}
    assert batch.perception[:, 0].tolist() == [5.0, 1.0, 14.0]


def test_perception_covers_every_row_in_order(episodes, table):
    frames, _ = table
    torch.manual_seed(0)
    model = build_policy(CONFIG)
    for parameter in model.vision.parameters():
        parameter.requires_grad_(False)
    perceived = frames.perceive(model, 4)
    assert perceived.shape[0] == len(frames)
    expected = model.perceive(frames.images(np.array([12])))
    torch.testing.assert_close(perceived[12:13], expected)


def test_an_empty_table_is_refused(episodes):
    with pytest.raises(ValueError, match="at least one part"):
        FrameTable(episodes, [], CONFIG, Normalizer.from_data(np.zeros((2, 14)), np.zeros((2, 14))), HashEmbedder())

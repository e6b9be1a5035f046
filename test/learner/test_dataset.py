"""Episode bags to aligned steps and chunk transitions, the decoded-episode cache, and bad bags."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from lwd_learner.dataset import EpisodeError, build_transitions, decode_episode
from lwd_learner.episode_cache import EpisodeCache
from lwd_learner.observations import episode_state
from lwd_policy.config import VLAConfig

KEY = "ab" * 32


def test_decode_aligns_every_stream_on_the_executed_command(tmp_path, episode_bag_writer):
    bag = episode_bag_writer(tmp_path / "bag", steps=10, intervention_steps=(3, 4), cameras=("top", "wrist"))
    episode = decode_episode(bag, KEY)
    assert episode.steps == 10
    assert episode.cameras == ("top", "wrist")
    assert episode.images["wrist"].shape == (10, 8, 10, 3)
    np.testing.assert_array_equal(episode.images["top"][:, 0, 0, 0], np.arange(10))
    np.testing.assert_allclose(episode.proprio[:, 0], -np.arange(10))
    np.testing.assert_allclose(episode.actions[:, 5], np.arange(10) + 0.05, rtol=1e-6)
    assert episode.intervention.nonzero()[0].tolist() == [3, 4]
    assert episode.policy_version[4] == "v000001" and episode.policy_version[5] == "v000006"
    assert (episode.task, episode.outcome, episode.episode_kind) == ("transfer_cube", "success", "deployment")


def expected_object_poses(steps: int, objects: int) -> np.ndarray:
    """What write_episode_bag records: object i at step t sits at (t, i, 0.5), unrotated."""
    rows = [[[t, i, 0.5, 1, 0, 0, 0] for i in range(objects)] for t in range(steps)]
    return np.array(rows, dtype=np.float64).reshape(steps, objects, 7)


def test_recorded_object_poses_decode_per_step(tmp_path, episode_bag_writer):
    episode = decode_episode(episode_bag_writer(tmp_path / "bag", steps=6, objects=2), KEY)
    assert episode.object_poses.shape == (6, 2, 7)
    np.testing.assert_array_equal(episode.object_poses, expected_object_poses(6, 2))
    state = episode_state(episode, np.array([0, 5]), VLAConfig(object_slots=3))
    assert state.shape == (2, 14 + 9)
    np.testing.assert_array_equal(state[:, 14:], [[0, 0, 0.5, 0, 1, 0.5, 0, 0, 0], [5, 0, 0.5, 5, 1, 0.5, 0, 0, 0]])


def test_episode_without_perception_has_no_object_poses(tmp_path, episode_bag_writer):
    episode = decode_episode(episode_bag_writer(tmp_path / "bag", steps=6), KEY)
    assert episode.object_poses.shape == (6, 0, 7)
    assert episode_state(episode, np.arange(6), VLAConfig()).shape == (6, 14)
    with pytest.raises(EpisodeError, match="episode ep0: the policy reads 2 object positions"):
        episode_state(episode, np.arange(6), VLAConfig(object_slots=2))


def test_chunk_transitions_pad_the_last_chunk_and_reward_only_the_success_end(tmp_path, episode_bag_writer):
    episode = decode_episode(episode_bag_writer(tmp_path / "bag", steps=10), KEY)
    chunks = build_transitions(episode, horizon=4, gamma=0.9)
    assert chunks.obs_index.tolist() == [0, 4, 8]
    assert chunks.next_obs_index.tolist() == [4, 8, 9]
    assert chunks.done.tolist() == [False, False, True]
    assert chunks.truncated.tolist() == [False, False, True]
    np.testing.assert_allclose(chunks.actions[2, :, 0], [8, 9, 9, 9])
    assert chunks.action_mask[2].tolist() == [True, True, False, False]
    np.testing.assert_allclose(chunks.reward, [0, 0, 1])
    np.testing.assert_allclose(chunks.discount, [0.9**4, 0.9**4, 0])
    assert not chunks.intervention.any() and not chunks.operator_mask.any()


def test_an_intervention_chunk_starts_at_the_takeover_and_clones_only_the_operators_steps(tmp_path, episode_bag_writer):
    """Takeover at step 5, hand-back at 9, horizon 4: the chunk from 4 starts with a policy step, so it is not an
    intervention chunk; one starts at the takeover instead, and the chunk from 8 is cloned up to the hand-back."""
    bag = episode_bag_writer(tmp_path / "bag", steps=12, intervention_steps=(5, 6, 7, 8))
    chunks = build_transitions(decode_episode(bag, KEY), horizon=4, gamma=0.9)
    assert chunks.obs_index.tolist() == [0, 4, 5, 8]
    np.testing.assert_allclose(chunks.actions[2, :, 0], [5, 6, 7, 8])
    assert chunks.intervention.tolist() == [False, False, True, True]
    assert chunks.operator_mask.tolist() == [[False] * 4, [False] * 4, [True] * 4, [True, False, False, False]]
    assert chunks.next_obs_index.tolist() == [4, 8, 9, 11]
    np.testing.assert_allclose(chunks.reward, [0, 0, 0, 1])
    np.testing.assert_allclose(chunks.discount, [0.9**4, 0.9**4, 0.9**4, 0], rtol=1e-6)
    two_step = build_transitions(decode_episode(bag, KEY), horizon=4, gamma=0.9, n_step=2)
    np.testing.assert_allclose(two_step.reward, [0, 0.9**4, 0.9**4, 1], rtol=1e-6)
    np.testing.assert_allclose(two_step.discount, [0.9**8, 0, 0, 0], rtol=1e-6)
    assert two_step.next_obs_index.tolist() == [8, 11, 11, 11]


def test_every_step_of_a_demonstration_is_the_operators(tmp_path, episode_bag_writer):
    """A demonstration is cloned whole (up to its end), whether or not its bag records the intervention state."""
    bag = episode_bag_writer(tmp_path / "bag", steps=6, kind="demonstration")
    chunks = build_transitions(decode_episode(bag, KEY), horizon=4, gamma=0.9)
    assert chunks.obs_index.tolist() == [0, 4]
    assert chunks.intervention.all()
    np.testing.assert_array_equal(chunks.operator_mask, chunks.action_mask)


def test_a_failed_demonstration_is_never_cloned_but_still_gives_transitions(tmp_path, episode_bag_writer):
    """A replay on another scene (``lwd_sim.replay``) is a failed demonstration: no cloning loss learns from it,
    while its chunks still bootstrap values like any other episode's."""
    bag = episode_bag_writer(tmp_path / "bag", steps=6, kind="demonstration", outcome="failure")
    chunks = build_transitions(decode_episode(bag, KEY), horizon=4, gamma=0.9)
    assert chunks.obs_index.tolist() == [0, 4]
    assert not chunks.operator_mask.any() and not chunks.intervention.any()
    np.testing.assert_allclose(chunks.reward, [0, 0])


def test_n_step_returns_stop_at_the_terminal_chunk(tmp_path, episode_bag_writer):
    episode = decode_episode(episode_bag_writer(tmp_path / "bag", steps=10), KEY)
    chunks = build_transitions(episode, horizon=4, gamma=0.9, n_step=2, stride=2)
    assert chunks.obs_index.tolist() == [0, 2, 4, 6, 8]
    gamma_chunk = 0.9**4
    np.testing.assert_allclose(chunks.reward, [0, gamma_chunk, gamma_chunk, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(chunks.discount, [gamma_chunk**2, 0, 0, 0, 0], rtol=1e-6)
    assert chunks.next_obs_index.tolist() == [8, 9, 9, 9, 9]


@pytest.mark.parametrize("recorded", [{"lwd.terminal": "false"}, {}], ids=["lwd.terminal false", "older bag"])
def test_a_time_limit_failure_is_bootstrapped_not_terminal(tmp_path, episode_bag_writer, recorded):
    bag = episode_bag_writer(tmp_path / "bag", steps=7, outcome="failure", extra_custom=recorded)
    episode = decode_episode(bag, KEY)
    assert not episode.terminal
    chunks = build_transitions(episode, horizon=3, gamma=0.9)
    np.testing.assert_allclose(chunks.reward, [0, 0, 0])
    assert chunks.done.tolist() == [False, False, False]
    np.testing.assert_allclose(chunks.discount, [0.9**3] * 3, rtol=1e-6)
    assert chunks.next_obs_index.tolist() == [3, 6, 6], "the cut bootstraps from the last recorded observation"
    two_step = build_transitions(episode, horizon=3, gamma=0.9, n_step=2)
    np.testing.assert_allclose(two_step.discount, [0.9**6, 0.9**6, 0.9**3], rtol=1e-6)
    assert two_step.next_obs_index.tolist() == [6, 6, 6]


def test_a_terminal_failure_stops_bootstrapping_without_reward(tmp_path, episode_bag_writer):
    bag = episode_bag_writer(tmp_path / "bag", steps=6, outcome="failure", extra_custom={"lwd.terminal": "true"})
    episode = decode_episode(bag, KEY)
    assert episode.terminal
    chunks = build_transitions(episode, horizon=3, gamma=0.99)
    np.testing.assert_allclose(chunks.reward, [0, 0])
    assert chunks.done.tolist() == [False, True]
    assert chunks.discount[1] == 0


def test_a_success_is_terminal_whether_or_not_the_bag_says_so(tmp_path, episode_bag_writer):
    assert decode_episode(episode_bag_writer(tmp_path / "new", extra_custom={"lwd.terminal": "true"}), KEY).terminal
    assert decode_episode(episode_bag_writer(tmp_path / "old"), KEY).terminal


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"outcome": "incomplete"}, "incomplete episode"),
        ({"extra_custom": {"lwd.episode_kind": "dream"}}, "unknown lwd.episode_kind"),
        ({"extra_custom": {"lwd.terminal": "yes"}}, "lwd.terminal must be"),
        ({"cameras": ()}, "no messages on the topics"),
    ],
)
def test_unusable_episodes_are_refused_with_a_reason(tmp_path, episode_bag_writer, kwargs, reason):
    bag = episode_bag_writer(tmp_path / "bag", steps=4, **kwargs)
    with pytest.raises(EpisodeError, match=reason):
        decode_episode(bag, KEY, cameras=("top",))


def test_foreign_and_corrupt_bags_are_refused(tmp_path, episode_bag_writer):
    from rosbags.rosbag2 import StoragePlugin, Writer

    foreign = tmp_path / "foreign"
    empty = Writer(foreign, version=9, storage_plugin=StoragePlugin.MCAP)  # a bag with no LWD custom data
    empty.open()
    empty.close()
    with pytest.raises(EpisodeError, match="foreign bag"):
        decode_episode(foreign, KEY)
    corrupt = episode_bag_writer(tmp_path / "corrupt", steps=4)
    (storage,) = corrupt.glob("*.mcap")
    storage.write_bytes(storage.read_bytes()[: storage.stat().st_size // 2])
    with pytest.raises(EpisodeError, match="corrupt"):
        decode_episode(corrupt, KEY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EpisodeError, match=r"corrupt bag: .*no metadata\.yaml"):
        decode_episode(tmp_path / "empty", KEY)


def test_cache_hit_after_restart_does_not_decode_again(tmp_path, episode_bag_writer):
    bag = episode_bag_writer(tmp_path / "bag", steps=5)
    first = EpisodeCache(tmp_path / "cache")
    decoded = first.load(bag, KEY)
    assert (first.decoded, first.hits) == (1, 0)
    shutil.rmtree(bag)
    restarted = EpisodeCache(tmp_path / "cache")
    cached = restarted.load(bag, KEY)
    assert (restarted.decoded, restarted.hits) == (0, 1)
    np.testing.assert_array_equal(cached.images["top"], decoded.images["top"])
    np.testing.assert_array_equal(cached.actions, decoded.actions)
    assert cached.policy_version.tolist() == decoded.policy_version.tolist()
    assert (cached.instruction, cached.episode_id) == (decoded.instruction, decoded.episode_id)


def test_damaged_cache_file_is_decoded_again(tmp_path, episode_bag_writer):
    bag = episode_bag_writer(tmp_path / "bag", steps=5)
    cache = EpisodeCache(tmp_path / "cache")
    cache.path_for(KEY).write_bytes(b"not an npz")
    episode = cache.load(bag, KEY)
    assert cache.decoded == 1 and episode.steps == 5
    assert EpisodeCache(tmp_path / "cache").load(bag, KEY).steps == 5


def test_cache_keeps_object_poses(tmp_path, episode_bag_writer):
    bag = episode_bag_writer(tmp_path / "bag", steps=5, objects=2)
    EpisodeCache(tmp_path / "cache").load(bag, KEY)
    restarted = EpisodeCache(tmp_path / "cache")
    cached = restarted.load(bag, KEY)
    assert (restarted.decoded, restarted.hits) == (0, 1)
    np.testing.assert_array_equal(cached.object_poses, expected_object_poses(5, 2))
    without = episode_bag_writer(tmp_path / "plain", steps=5)
    EpisodeCache(tmp_path / "cache").load(without, "cd" * 32)
    reread = EpisodeCache(tmp_path / "cache")
    assert reread.load(without, "cd" * 32).object_poses.shape == (5, 0, 7) and reread.hits == 1


def test_cache_keeps_whether_the_episode_ended_in_a_terminal_state(tmp_path, episode_bag_writer):
    bag = episode_bag_writer(tmp_path / "bag", steps=5, outcome="failure", extra_custom={"lwd.terminal": "false"})
    EpisodeCache(tmp_path / "cache").load(bag, KEY)
    restarted = EpisodeCache(tmp_path / "cache")
    assert restarted.load(bag, KEY).terminal is False and restarted.hits == 1


def test_cache_file_from_before_object_poses_is_decoded_again(tmp_path, episode_bag_writer):
    bag = episode_bag_writer(tmp_path / "bag", steps=5, objects=1)
    cache = EpisodeCache(tmp_path / "cache")
    cache.load(bag, KEY)
    path = cache.path_for(KEY)
    with np.load(path, allow_pickle=False) as data:
        old = {name: data[name] for name in data.files if name != "object_poses"}
    with open(path, "wb") as stream:
        np.savez(stream, **old)
    restarted = EpisodeCache(tmp_path / "cache")
    episode = restarted.load(bag, KEY)
    assert (restarted.decoded, restarted.hits) == (1, 0)
    np.testing.assert_array_equal(episode.object_poses, expected_object_poses(5, 1))
    with np.load(path, allow_pickle=False) as data:
        assert "object_poses" in data.files

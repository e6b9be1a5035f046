"""Replay buffer: capacity with oldest-first eviction, the sampling mix, and a resumable position."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from lwd_learner.dataset import ChunkTransitions
from lwd_learner.replay_buffer import CATEGORIES, ReplayBuffer, bounded_shares


def chunks(count: int, intervention_rows: tuple[int, ...] = (), horizon: int = 2) -> ChunkTransitions:
    intervention = np.zeros(count, dtype=bool)
    intervention[list(intervention_rows)] = True
    return ChunkTransitions(
        horizon=horizon,
        obs_index=np.arange(count) * horizon,
        next_obs_index=np.arange(1, count + 1) * horizon,
        actions=np.arange(count, dtype=np.float32)[:, None, None] * np.ones((1, horizon, 3), dtype=np.float32),
        action_mask=np.ones((count, horizon), dtype=bool),
        operator_mask=intervention[:, None] & np.ones((count, horizon), dtype=bool),
        reward=np.zeros(count, dtype=np.float32),
        discount=np.full(count, 0.9, dtype=np.float32),
        done=np.zeros(count, dtype=bool),
        intervention=intervention,
        policy_version=np.array(["v000001"] * count),
    )


def test_capacity_evicts_the_oldest_episodes_whole():
    buffer = ReplayBuffer(capacity=10, mix={"autonomous": 1.0})
    assert buffer.add("a", chunks(4), demonstration=False) == []
    assert buffer.add("b", chunks(4), demonstration=False) == []
    assert buffer.add("c", chunks(4), demonstration=False) == ["a"]
    assert len(buffer) == 8 and buffer.episode_keys() == ["b", "c"]
    assert buffer.add("d", chunks(9), demonstration=False) == ["b", "c"]
    assert buffer.episode_keys() == ["d"] and buffer.episodes_evicted == 3


def test_sampling_follows_the_mix_and_categories():
    buffer = ReplayBuffer(capacity=1000, mix={"demo": 0.5, "autonomous": 0.25, "intervention": 0.25}, seed=1)
    buffer.add("demo", chunks(10), demonstration=True)
    buffer.add("auto", chunks(200), demonstration=False)
    buffer.add("takeover", chunks(10, intervention_rows=(2, 3)), demonstration=False)
    assert buffer.composition() == {"demo": 10, "autonomous": 208, "intervention": 2}
    sample = buffer.sample(4000)
    fractions = np.bincount(sample.category, minlength=3) / 4000
    np.testing.assert_allclose(fractions, [0.5, 0.25, 0.25], atol=0.03)
    demo_rows = np.array(sample.episode_keys) == "demo"
    assert (sample.category[demo_rows] == CATEGORIES.index("demo")).all()
    intervention_rows = sample.category == CATEGORIES.index("intervention")
    assert set(sample.transitions.obs_index[intervention_rows].tolist()) == {4, 6}
    np.testing.assert_array_equal(sample.transitions.actions[:, 0, 0], sample.transitions.obs_index / 2)


def test_a_sample_may_ask_for_another_mix_than_the_buffers():
    """The trainer's clone batch: the same held transitions, drawn at other shares, under the same bound."""
    buffer = ReplayBuffer(capacity=1000, mix={"demo": 0.25, "autonomous": 0.5, "intervention": 0.25}, seed=1)
    buffer.add("demo", chunks(100), demonstration=True)
    buffer.add("takeover", chunks(100, intervention_rows=tuple(range(50))), demonstration=False)
    clone = buffer.sample(4000, {"demo": 0.5, "intervention": 0.5})
    np.testing.assert_allclose(np.bincount(clone.category, minlength=3) / 4000, [0.5, 0.0, 0.5], atol=0.03)
    default = buffer.sample(4000)
    np.testing.assert_allclose(np.bincount(default.category, minlength=3) / 4000, [0.25, 0.5, 0.25], atol=0.03)


def test_missing_categories_are_renormalized_away():
    buffer = ReplayBuffer(capacity=100, mix={"demo": 0.9, "autonomous": 0.1})
    buffer.add("auto", chunks(5), demonstration=False)
    sample = buffer.sample(50)
    assert (sample.category == CATEGORIES.index("autonomous")).all()


def test_max_oversample_bounds_a_scarce_category_and_gives_its_share_to_the_others():
    # Round 1 of the pixel demo: 31 intervention chunks among 4,827 transitions, mix 0.25/0.5/0.25.
    mix = {"demo": 0.25, "autonomous": 0.5, "intervention": 0.25}
    held = np.array([4700, 96, 31])
    shares = bounded_shares(mix, held, max_oversample=8)
    np.testing.assert_allclose(shares[1:], 8 * held[1:] / held.sum())
    assert shares.sum() == pytest.approx(1) and shares[0] > 0.75
    np.testing.assert_allclose(bounded_shares(mix, held, max_oversample=math.inf), [0.25, 0.5, 0.25])
    np.testing.assert_allclose(bounded_shares(mix, held, max_oversample=1), held / held.sum())
    # With enough of every category the bound does not bind, and a category the mix leaves out stays out.
    np.testing.assert_allclose(bounded_shares(mix, [4800, 800, 230], 8), [0.25, 0.5, 0.25])
    hg_dagger = bounded_shares({"demo": 0.5, "intervention": 0.5}, held, 8)
    assert hg_dagger[1] == 0 and hg_dagger[2] == pytest.approx(8 * 31 / held.sum())
    # When the asked-for categories cannot fill a batch within the bound, the mix wins.
    np.testing.assert_allclose(bounded_shares({"intervention": 1.0}, held, 8), [0, 0, 1])


def test_sampling_draws_a_bounded_category_at_its_bound():
    buffer = ReplayBuffer(capacity=1000, mix={"demo": 0.5, "intervention": 0.5}, seed=3, max_oversample=4)
    buffer.add("demo", chunks(190), demonstration=True)
    buffer.add("takeover", chunks(10, intervention_rows=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)), demonstration=False)
    assert buffer.batch_shares() == pytest.approx({"demo": 0.8, "autonomous": 0.0, "intervention": 0.2})
    fractions = np.bincount(buffer.sample(4000).category, minlength=3) / 4000
    np.testing.assert_allclose(fractions, [0.8, 0.0, 0.2], atol=0.03)


def test_state_dict_resumes_the_same_sample_stream():
    def filled() -> ReplayBuffer:
        buffer = ReplayBuffer(capacity=12, mix={"demo": 0.3, "autonomous": 0.7}, seed=7)
        for key in "abcd":
            buffer.add(key, chunks(5), demonstration=key == "a")
        return buffer

    original = filled()
    original.sample(16)
    state = json.loads(json.dumps(original.state_dict()))
    expected = original.sample(32)
    resumed = filled()
    resumed.load_state_dict(state)
    again = resumed.sample(32)
    assert again.episode_keys == expected.episode_keys
    np.testing.assert_array_equal(again.transitions.obs_index, expected.transitions.obs_index)
    with pytest.raises(ValueError, match="re-add the saved episodes"):
        ReplayBuffer(capacity=12, mix={"demo": 1.0}).load_state_dict(state)


def test_bad_configuration_and_empty_sampling_are_refused():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity=0, mix={"demo": 1.0})
    with pytest.raises(ValueError, match="sampling mix"):
        ReplayBuffer(capacity=5, mix={"robots": 1.0})
    with pytest.raises(ValueError, match="max_oversample"):
        ReplayBuffer(capacity=5, mix={"demo": 1.0}, max_oversample=0.5)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(capacity=5, mix={"demo": 1.0}).sample(2)


def test_gathered_rows_keep_their_order_and_types_and_one_horizon():
    first, second = chunks(3), chunks(5, intervention_rows=(4,))
    rows = ChunkTransitions.gather([(second, 4), (first, 0), (second, 1)])
    np.testing.assert_array_equal(rows.obs_index, [8, 0, 2])
    np.testing.assert_array_equal(rows.intervention, [True, False, False])
    assert rows.reward.dtype == np.float32 and rows.actions.shape == (3, 2, 3) and rows.count == 3
    with pytest.raises(ValueError, match="different horizons"):
        ChunkTransitions.gather([(first, 0), (chunks(3, horizon=4), 0)])


def test_counts_and_samples_follow_every_add_and_eviction():
    buffer = ReplayBuffer(capacity=10, mix={"demo": 0.5, "autonomous": 0.5}, seed=2)
    buffer.add("a", chunks(6), demonstration=True)
    assert buffer.composition() == {"demo": 6, "autonomous": 0, "intervention": 0}
    assert set(buffer.sample(50).episode_keys) == {"a"}
    buffer.add("b", chunks(4), demonstration=False)
    assert buffer.composition() == {"demo": 6, "autonomous": 4, "intervention": 0}
    assert set(buffer.sample(50).episode_keys) == {"a", "b"}
    assert buffer.add("c", chunks(3, intervention_rows=(1,)), demonstration=False) == ["a"]
    assert buffer.composition() == {"demo": 0, "autonomous": 6, "intervention": 1}
    assert set(buffer.sample(50).episode_keys) == {"b", "c"}

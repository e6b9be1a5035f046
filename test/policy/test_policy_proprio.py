"""Object poses as a policy input: the state layout, the config field, checkpoints and inference with object slots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from lwd_policy.checkpoint import CheckpointError, load_checkpoint
from lwd_policy.config import VLAConfig
from lwd_policy.contract import ConfigError, ObservationError
from lwd_policy.inference import ChunkPredictor, PolicyObservation
from lwd_policy.language import InstructionEncoder
from lwd_policy.proprio import POSE_WIDTH, ProprioError, no_object_poses, policy_state
from lwd_policy.runtime import CommandStatus, InferenceRuntime, RuntimeConfig
from lwd_policy.safety import robot_limits

QPOS = np.arange(14, dtype=np.float64) / 10.0


def poses(count: int, offset: float = 0.0) -> np.ndarray:
    """``count`` distinct poses: position (10i, 10i+1, 10i+2) + offset, identity orientation."""
    rows = [[10 * i + offset, 10 * i + 1 + offset, 10 * i + 2 + offset, 1.0, 0.0, 0.0, 0.0] for i in range(count)]
    return np.asarray(rows, dtype=np.float64).reshape(count, POSE_WIDTH)


def test_state_is_joints_then_object_positions_without_orientation() -> None:
    state = policy_state(QPOS, poses(2), object_slots=2)
    assert state.dtype == np.float32 and state.shape == (14 + 6,)
    np.testing.assert_allclose(state[:14], QPOS, rtol=1e-6)
    np.testing.assert_array_equal(state[14:], [0, 1, 2, 10, 11, 12])


def test_unused_object_slots_read_as_zeros() -> None:
    state = policy_state(QPOS, poses(1, offset=0.5), object_slots=3)
    assert state.shape == (14 + 9,)
    np.testing.assert_array_equal(state[14:17], [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(state[17:], np.zeros(6))


def test_episode_arrays_keep_their_step_axis() -> None:
    qpos = np.stack([QPOS, -QPOS, 2 * QPOS])
    per_step = np.stack([poses(2, offset=step) for step in range(3)])
    state = policy_state(qpos, per_step, object_slots=2)
    assert state.shape == (3, 20)
    np.testing.assert_allclose(state[:, :14], qpos, rtol=1e-6)
    np.testing.assert_array_equal(state[:, 14], [0, 1, 2])
    np.testing.assert_array_equal(state[:, 17], [10, 11, 12])


def test_without_object_slots_the_state_is_the_joint_positions() -> None:
    for object_poses in (None, no_object_poses(), poses(4)):
        state = policy_state(QPOS, object_poses, object_slots=0)
        assert state.dtype == np.float32
        np.testing.assert_array_equal(state, QPOS.astype(np.float32))


@pytest.mark.parametrize(
    ("object_poses", "message"),
    [
        (None, "no object poses were given"),
        (no_object_poses(), "no object poses were given"),
        (poses(3), "3 object poses given, the policy has only 2 object slots"),
        (np.zeros((2, 6)), r"object poses must be \[\.\.\., N, 7\]"),
        (np.zeros(7), r"object poses must be \[\.\.\., N, 7\]"),
        (np.zeros((2, 2, 7)), r"matching qpos \(14,\)"),
    ],
)
def test_poses_that_do_not_fit_the_slots_are_refused(object_poses: np.ndarray | None, message: str) -> None:
    with pytest.raises(ProprioError, match=message):
        policy_state(QPOS, object_poses, object_slots=2)


def test_no_object_poses_has_the_pose_width_and_the_batch_shape() -> None:
    assert no_object_poses().shape == (0, POSE_WIDTH)
    assert no_object_poses((5,)).shape == (5, 0, POSE_WIDTH)


def test_object_slots_config_field() -> None:
    config = VLAConfig(object_slots=2)
    assert (config.state_dim, VLAConfig().state_dim) == (14 + 6, 14)
    assert VLAConfig.from_json(config.to_json()) == config
    for bad in (-1, True, 1.5, "2"):
        with pytest.raises(ConfigError, match="object_slots must be a non-negative integer"):
            VLAConfig(object_slots=bad)
    with pytest.raises(ConfigError, match="object_slots: expected 0, got 2"):
        VLAConfig().check_compatible(config)


def test_checkpoint_with_object_slots_reloads_and_refuses_a_pixels_only_robot(
    make_checkpoint: Callable[..., Path], small_config: VLAConfig
) -> None:
    slotted = small_config.replace(object_slots=2)
    folder = make_checkpoint("v000001", config=slotted)
    loaded = load_checkpoint(folder, expected=slotted)
    assert loaded.config.object_slots == 2 and loaded.normalizer.proprio.dim == 20
    with pytest.raises(CheckpointError, match="object_slots: expected 0, got 2"):
        load_checkpoint(folder, expected=small_config)


def _observation(config: VLAConfig, object_poses: np.ndarray | None) -> PolicyObservation:
    images = {camera: np.full((config.image_height, config.image_width, 3), 90, np.uint8) for camera in config.cameras}
    return PolicyObservation(0.0, QPOS, images, "pick up the cube", object_poses)


def test_predictor_feeds_object_positions_and_needs_them(
    make_checkpoint: Callable[..., Path], small_config: VLAConfig, encoder: InstructionEncoder
) -> None:
    config = small_config.replace(object_slots=2)
    predictor = ChunkPredictor(load_checkpoint(make_checkpoint("v000001", config=config)), encoder)
    batch = predictor.batch([_observation(config, poses(1))])
    np.testing.assert_array_equal(batch.proprio[0, 14:].numpy(), [0, 1, 2, 0, 0, 0])  # identity normalization
    assert predictor.predict([_observation(config, poses(2))]).shape == (1, config.horizon, 14)
    assert np.isfinite(predictor.predict([predictor.blank_observation()])).all()
    with pytest.raises(ObservationError, match="no object poses were given"):
        predictor.batch([_observation(config, None)])
    with pytest.raises(ObservationError, match="only 2 object slots"):
        predictor.predict([_observation(config, poses(3))])


def test_runtime_serves_a_policy_with_object_slots(
    make_checkpoint: Callable[..., Path], small_config: VLAConfig, encoder: InstructionEncoder
) -> None:
    config = small_config.replace(object_slots=2)
    runtime = InferenceRuntime.from_checkpoint(
        make_checkpoint("v000001", config=config), robot_limits(), RuntimeConfig(mode="lockstep", low_water=4), encoder
    )
    step = runtime.step(_observation(config, poses(2)), 0.0)
    assert step.status is CommandStatus.POLICY and np.isfinite(step.command).all()
    report = runtime.offer_checkpoint(make_checkpoint("v000002", seed=1, config=config)).result(timeout=60)
    assert report.accepted, report.reason

"""BC pretraining clones only what the operator executed: padding past an episode's end and the policy's steps
after a hand-back stay out of the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lwd_interfaces.camera_projection import CameraCalibration, CameraProjection, pinhole_matrix
from lwd_learner.bc_frames import Frames, FrameTable
from lwd_learner.dataset import decode_episode
from lwd_learner.observations import episode_state
from lwd_learner.pretrain import pretrain_bc
from lwd_learner.pretrain_config import PretrainConfig
from lwd_policy.config import VLAConfig
from lwd_policy.model import FlowMatchingVLA
from lwd_policy.normalization import Normalizer

from lwd_learner import pretrain

from .conftest import TINY_VLA, HashEmbedder, write_episode_bag

KEY = "ab" * 32


@pytest.fixture
def cloned_masks(monkeypatch) -> list[torch.Tensor | None]:
    """The ``mask`` of every flow-matching loss pretraining computes, in order."""
    masks: list[torch.Tensor | None] = []
    loss = pretrain.flow_matching_loss

    def recording(*args, **kwargs):
        masks.append(kwargs.get("mask"))
        return loss(*args, **kwargs)

    monkeypatch.setattr(pretrain, "flow_matching_loss", recording)
    return masks


def test_padding_past_the_episode_end_is_not_cloned(tmp_path, cloned_masks):
    """A 2-step demonstration and horizon 4: every chunk runs past the end, so half or more of it is padding."""
    episode = decode_episode(
        write_episode_bag(tmp_path / "demo", steps=2, kind="demonstration", image_shape=(16, 16)), KEY
    )
    pretrain_bc([episode], VLAConfig.from_dict(TINY_VLA), HashEmbedder(), PretrainConfig(steps=2, batch_size=16))
    assert len(cloned_masks) == 2 and all(mask is not None for mask in cloned_masks)
    rows = {tuple(row) for mask in cloned_masks for row in mask.tolist()}
    assert rows == {(True, True, False, False), (True, False, False, False)}


def test_intervention_chunks_are_cloned_up_to_the_hand_back(tmp_path, cloned_masks):
    """Takeover at step 3, hand-back at 5, horizon 4: chunks start at 3 and 4, and the policy's steps are left out."""
    bag = write_episode_bag(tmp_path / "deployment", steps=10, intervention_steps=(3, 4), image_shape=(16, 16))
    config = PretrainConfig(steps=3, batch_size=16, with_interventions=True)
    pretrain_bc([decode_episode(bag, KEY)], VLAConfig.from_dict(TINY_VLA), HashEmbedder(), config)
    assert len(cloned_masks) == 3 and all(mask is not None for mask in cloned_masks)
    rows = {tuple(row) for mask in cloned_masks for row in mask.tolist()}
    assert rows == {(True, True, False, False), (True, False, False, False)}


def pretrain_with_snapshots(tmp_path, monkeypatch, settings: PretrainConfig):
    """Pretrain a tiny VLA with an object head on one demonstration; returns the model and its weights when built
    and after every step."""
    bag = write_episode_bag(tmp_path / "demo", steps=8, kind="demonstration", image_shape=(16, 16), objects=1)
    config = VLAConfig.from_dict({**TINY_VLA, "perceived_objects": 1})
    built: list[torch.nn.Module] = []
    snapshots: list[dict[str, torch.Tensor]] = []

    def snapshot(step: int | None = None, loss: float | None = None) -> None:
        snapshots.append({name: value.clone() for name, value in built[0].state_dict().items()})

    original = pretrain.build_policy

    def build(policy_config: VLAConfig) -> torch.nn.Module:
        built.append(original(policy_config))
        snapshot()
        return built[0]

    monkeypatch.setattr(pretrain, "build_policy", build)
    model, _ = pretrain_bc([decode_episode(bag, KEY)], config, HashEmbedder(), settings, progress=snapshot)
    return model, snapshots


def test_perception_steps_train_perception_alone_then_freeze_it(tmp_path, monkeypatch):
    """Perception steps move only the vision trunk and the object head; the flow steps after them move only the rest."""
    settings = PretrainConfig(steps=3, batch_size=8, perception_steps=3, log_every=1)
    model, snapshots = pretrain_with_snapshots(tmp_path, monkeypatch, settings)
    first, after_perception, final = snapshots[1], snapshots[3], model.state_dict()

    def moved(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
        return {name.split(".")[0] for name in before if not torch.equal(before[name], after[name])}

    assert moved(first, after_perception) == {"vision", "objects"}, "perception steps train perception alone"
    assert "objects" not in moved(after_perception, final) and "action_expert" in moved(after_perception, final)
    trunk = [name for name in final if name.startswith("vision.trunk")]
    assert trunk and all(torch.equal(after_perception[name], final[name]) for name in trunk)
    assert all(parameter.requires_grad for parameter in model.parameters()), "the returned model trains again"


def test_perception_steps_descend_at_their_own_learning_rate(tmp_path, monkeypatch):
    """Adam's first step moves a weight by about its learning rate: the perception steps' by ``perception_lr``,
    the flow steps' by ``lr``."""
    settings = PretrainConfig(steps=1, batch_size=8, perception_steps=1, lr=1e-4, perception_lr=1e-2, log_every=1)
    _, (start, after_perception, final) = pretrain_with_snapshots(tmp_path, monkeypatch, settings)

    def largest_move(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], part: str) -> float:
        return max(float((after[name] - before[name]).abs().max()) for name in before if name.startswith(part))

    assert largest_move(start, after_perception, "vision.trunk") == pytest.approx(1e-2, rel=0.05)
    assert largest_move(after_perception, final, "action_expert") == pytest.approx(1e-4, rel=0.05)


def test_frozen_perception_runs_once_per_frame_and_trains_the_same(tmp_path, monkeypatch):
    """After perception-first, each frame's keypoints are computed once, not on every flow step, and the flow
    trains to the same weights as when the frozen trunk runs on every batch."""
    settings = PretrainConfig(steps=3, batch_size=8, perception_steps=2, log_every=1)
    trunk_batches: list[int] = []
    original = pretrain.build_policy

    def build(policy_config: VLAConfig) -> torch.nn.Module:
        model = original(policy_config)
        model.vision.trunk.register_forward_hook(lambda module, inputs, output: trunk_batches.append(len(output)))
        return model

    monkeypatch.setattr(pretrain, "build_policy", build)
    cached, _ = pretrain_with_snapshots(tmp_path / "cached", monkeypatch, settings)
    assert trunk_batches == [8, 8, 8], "two perception steps, then the 8 frames once"
    trunk_batches.clear()
    monkeypatch.setattr(FrameTable, "perceive", lambda *args: None)
    recomputed, _ = pretrain_with_snapshots(tmp_path / "recomputed", monkeypatch, settings)
    assert trunk_batches == [8] * 5, "without the cache the trunk runs on every step"
    for name, value in cached.state_dict().items():
        torch.testing.assert_close(value, recomputed.state_dict()[name], msg=name)


def test_perception_that_still_trains_is_not_computed_in_advance(tmp_path):
    bag = write_episode_bag(tmp_path / "demo", steps=4, kind="demonstration", image_shape=(16, 16), objects=1)
    config = VLAConfig.from_dict({**TINY_VLA, "perceived_objects": 1})
    model = pretrain.build_policy(config)
    episode = decode_episode(bag, KEY)
    normalizer = Normalizer.from_data(episode_state(episode, np.arange(4), config), episode.actions)
    table = FrameTable([episode], [Frames(0, np.arange(4))], config, normalizer, HashEmbedder())
    assert table.perceive(model, 2) is None
    for parameter in model.vision.parameters():
        parameter.requires_grad_(False)
    perceived = table.perceive(model, 3)
    assert perceived is not None and perceived.shape[0] == 4


def test_perception_steps_need_a_model_with_an_auxiliary_loss(tmp_path):
    bag = write_episode_bag(tmp_path / "demo", steps=4, kind="demonstration", image_shape=(16, 16))
    with pytest.raises(pretrain.PretrainError, match="perception_steps=2 needs"):
        pretrain_bc(
            [decode_episode(bag, KEY)],
            VLAConfig.from_dict(TINY_VLA),
            HashEmbedder(),
            PretrainConfig(steps=1, batch_size=4, perception_steps=2),
        )


@pytest.fixture
def labelled_episodes(monkeypatch) -> list[int]:
    """The length of the episode behind every frame of every batch pretraining draws, in order."""
    lengths: list[int] = []
    batch = FrameTable.batch

    def recording(table, rows, perception=None):
        lengths.extend(table.episodes[episode].steps for episode in table.episode[rows])
        return batch(table, rows, perception)

    monkeypatch.setattr(FrameTable, "batch", recording)
    return lengths


@pytest.mark.parametrize("perception_steps", [0, 3])
def test_recorded_frames_teach_perception_and_are_never_cloned(tmp_path, cloned_masks, labelled_episodes,
                                                               perception_steps):  # fmt: skip
    """A successful 4-step demonstration and a failed 40-step one (a replay): with ``perception_frames="recorded"``
    the failed one's frames reach the object head's loss, with nothing to clone; flow steps after perception-first
    draw only cloned frames."""
    demo = write_episode_bag(tmp_path / "demo", steps=4, kind="demonstration", image_shape=(16, 16), objects=1)
    replay = write_episode_bag(tmp_path / "replay", steps=40, outcome="failure", kind="demonstration",
                               image_shape=(16, 16), objects=1, episode_id="ep1")  # fmt: skip
    episodes = [decode_episode(demo, KEY), decode_episode(replay, KEY)]
    config = VLAConfig.from_dict({**TINY_VLA, "perceived_objects": 1})
    for frames in ("cloned", "recorded"):
        cloned_masks.clear()
        labelled_episodes.clear()
        settings = PretrainConfig(steps=4, batch_size=16, perception_frames=frames, perception_steps=perception_steps)
        pretrain_bc(episodes, config, HashEmbedder(), settings)
        nothing_cloned = [not row.any() for mask in cloned_masks for row in mask]
        assert len(cloned_masks) == 4
        if frames == "cloned":
            assert set(labelled_episodes) == {4} and not any(nothing_cloned)
        else:
            assert 40 in labelled_episodes, "the failed episode's frames are perception labels"
            assert any(nothing_cloned) == (perception_steps == 0), "and never cloned"


def test_unknown_perception_frames_are_refused():
    with pytest.raises(ValueError, match="perception_frames must be one of"):
        PretrainConfig(perception_frames="all")


def _top_camera(width: int = 16, height: int = 16) -> CameraCalibration:
    """A 'top' camera 2 m above the origin looking down."""
    matrix = pinhole_matrix(np.array([0.0, 0.0, 2.0]), np.eye(3), 60.0, width, height)
    return CameraCalibration({"top": CameraProjection(width, height, matrix)})


def test_a_calibration_adds_the_keypoint_loss_to_the_perception_steps_alone(tmp_path):
    """The same seed, bag and steps: the first perception step's loss grows by ``keypoint_weight`` × the keypoint
    loss, and a weight of 0 gives back training without a calibration, step for step."""
    bag = write_episode_bag(tmp_path / "demo", steps=8, kind="demonstration", image_shape=(16, 16), objects=1)
    episodes = [decode_episode(bag, KEY)]
    config = VLAConfig.from_dict({**TINY_VLA, "perceived_objects": 1})
    keypoint_calls: list[int] = []
    original = FlowMatchingVLA.keypoint_loss

    def counted(model, perception, pixels):
        keypoint_calls.append(len(perception))
        return original(model, perception, pixels)

    def losses(calibration: CameraCalibration | None, weight: float) -> list[float]:
        seen: list[float] = []
        settings = PretrainConfig(steps=2, batch_size=8, perception_steps=3, keypoint_weight=weight, log_every=1)
        pretrain_bc(episodes, config, HashEmbedder(), settings, lambda _, loss: seen.append(loss), calibration)
        return seen

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FlowMatchingVLA, "keypoint_loss", counted)
        plain = losses(None, 10.0)
        assert keypoint_calls == []
        labelled = losses(_top_camera(), 10.0)
        assert keypoint_calls == [8, 8, 8], "one keypoint loss per perception step, none in the flow steps"
        assert labelled[0] > plain[0] + 1e-3
        assert losses(_top_camera(), 0.0) == plain


@pytest.mark.parametrize(
    ("calibration", "perception_steps", "reason"),
    [
        (_top_camera(), 0, "set perception_steps > 0"),
        (_top_camera(32, 16), 2, "calibrated for 32x16 images, the policy reads 16x16"),
        (CameraCalibration({"side": _top_camera().cameras["top"]}), 2, "no projection for camera 'top'"),
    ],
)
def test_a_calibration_that_cannot_label_the_run_is_refused(tmp_path, calibration, perception_steps, reason):
    bag = write_episode_bag(tmp_path / "demo", steps=4, kind="demonstration", image_shape=(16, 16), objects=1)
    config = VLAConfig.from_dict({**TINY_VLA, "perceived_objects": 1})
    settings = PretrainConfig(steps=1, batch_size=4, perception_steps=perception_steps)
    with pytest.raises(pretrain.PretrainError, match=reason):
        pretrain_bc([decode_episode(bag, KEY)], config, HashEmbedder(), settings, calibration=calibration)


def test_a_negative_keypoint_weight_is_refused():
    with pytest.raises(ValueError, match="keypoint_weight must be a finite number >= 0"):
        PretrainConfig(keypoint_weight=-1.0)

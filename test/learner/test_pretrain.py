"""BC pretraining clones only what the operator executed: padding past an episode's end and the policy's steps
after a hand-back stay out of the loss."""

from __future__ import annotations

import pytest
import torch
from lwd_learner.dataset import decode_episode
from lwd_learner.pretrain import PretrainConfig, pretrain_bc
from lwd_policy.config import VLAConfig

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


def test_perception_steps_train_perception_alone_then_freeze_it(tmp_path, monkeypatch):
    """Perception steps move only the vision trunk and the object head; the flow steps after them move only the rest."""
    bag = write_episode_bag(tmp_path / "demo", steps=8, kind="demonstration", image_shape=(16, 16), objects=1)
    config = VLAConfig.from_dict({**TINY_VLA, "perceived_objects": 1})
    built: list[torch.nn.Module] = []
    build = pretrain.build_policy
    monkeypatch.setattr(pretrain, "build_policy", lambda policy_config: built.append(build(policy_config)) or built[0])
    snapshots: list[dict[str, torch.Tensor]] = []

    def snapshot(step: int, loss: float) -> None:
        snapshots.append({name: value.clone() for name, value in built[0].state_dict().items()})

    model, _ = pretrain_bc(
        [decode_episode(bag, KEY)],
        config,
        HashEmbedder(),
        PretrainConfig(steps=3, batch_size=8, perception_steps=3, log_every=1),
        progress=snapshot,
    )
    first, after_perception, final = snapshots[0], snapshots[2], model.state_dict()

    def moved(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
        return {name.split(".")[0] for name in before if not torch.equal(before[name], after[name])}

    assert moved(first, after_perception) == {"vision", "objects"}, "perception steps train perception alone"
    assert "objects" not in moved(after_perception, final) and "action_expert" in moved(after_perception, final)
    trunk = [name for name in final if name.startswith("vision.trunk")]
    assert trunk and all(torch.equal(after_perception[name], final[name]) for name in trunk)
    assert all(parameter.requires_grad for parameter in model.parameters()), "the returned model trains again"


def test_perception_steps_need_a_model_with_an_auxiliary_loss(tmp_path):
    bag = write_episode_bag(tmp_path / "demo", steps=4, kind="demonstration", image_shape=(16, 16))
    with pytest.raises(pretrain.PretrainError, match="perception_steps=2 needs"):
        pretrain_bc(
            [decode_episode(bag, KEY)],
            VLAConfig.from_dict(TINY_VLA),
            HashEmbedder(),
            PretrainConfig(steps=1, batch_size=4, perception_steps=2),
        )

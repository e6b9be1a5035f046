"""The built-in VLA: config round trip, observation validation, flow sampling, and BC sanity."""

from __future__ import annotations

import copy

import pytest
import torch
from lwd_policy.config import VLAConfig
from lwd_policy.contract import ConfigError, ObservationBatch, ObservationError, PolicyModel
from lwd_policy.flow import flow_matching_loss, interpolate
from lwd_policy.model import ActionExpert, FlowMatchingVLA
from lwd_policy.normalization import NormalizationError, Normalizer


def _batch(config: VLAConfig, size: int = 3) -> ObservationBatch:
    generator = torch.Generator().manual_seed(5)
    images = {
        camera: torch.randint(0, 256, (size, 3, config.image_height, config.image_width), generator=generator).to(
            torch.uint8
        )
        for camera in config.cameras
    }
    return ObservationBatch(images, torch.randn(size, config.language_dim, generator=generator), torch.randn(size, 14))


def test_config_json_round_trip_and_validation() -> None:
    config = VLAConfig(cameras=("top", "left_wrist"), horizon=16)
    assert VLAConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="horizon"):
        VLAConfig(horizon=0)
    with pytest.raises(ConfigError, match="unknown config fields"):
        VLAConfig.from_dict({**config.to_dict(), "bogus": 1})
    with pytest.raises(ConfigError, match="horizon: expected 16, got 20"):
        config.check_compatible(VLAConfig(cameras=("top", "left_wrist")))


def test_sample_shapes_and_seed_determinism(small_config: VLAConfig) -> None:
    model = FlowMatchingVLA(small_config).eval()
    assert isinstance(model, PolicyModel)
    with torch.no_grad():
        features = model.encode(_batch(small_config))
        assert features.shape == (3, small_config.feature_dim)
        first = model.sample(features, generator=torch.Generator().manual_seed(7))
        second = model.sample(features, generator=torch.Generator().manual_seed(7))
        other = model.sample(features, generator=torch.Generator().manual_seed(8))
        more_steps = model.sample(features, noise=torch.zeros(3, 8, 14), steps=9)
    assert first.shape == (3, small_config.horizon, small_config.action_dim)
    assert more_steps.shape == first.shape
    assert torch.equal(first, second)
    assert not torch.allclose(first, other)


def test_multi_camera_encode_rejects_wrong_inputs() -> None:
    config = VLAConfig(
        cameras=("top", "wrist"),
        image_height=16,
        image_width=16,
        vision_channels=(8,),
        vision_groups=4,
        expert_width=32,
    )
    model = FlowMatchingVLA(config)
    good = _batch(config, 2)
    assert model.encode(good).shape == (2, config.feature_dim)
    missing = ObservationBatch({"top": good.images["top"]}, good.instruction_embedding, good.proprio)
    with pytest.raises(ObservationError, match="missing camera"):
        model.encode(missing)
    wrong_dtype = ObservationBatch(
        {k: v.float() for k, v in good.images.items()}, good.instruction_embedding, good.proprio
    )
    with pytest.raises(ObservationError, match="uint8"):
        model.encode(wrong_dtype)


def test_flow_loss_is_zero_for_the_exact_velocity() -> None:
    actions = torch.randn(4, 3, 2)
    noise = torch.randn(4, 3, 2)
    t = torch.rand(4)

    class Exact(torch.nn.Module):
        def forward(self, x: torch.Tensor, t_: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
            return actions - noise

    assert flow_matching_loss(Exact(), actions, torch.zeros(4, 1), noise=noise, t=t).item() == 0.0
    assert torch.allclose(interpolate(noise, actions, torch.ones(4)), actions)
    assert torch.allclose(interpolate(noise, actions, torch.zeros(4)), noise)


class _LinearVelocity(torch.nn.Module):
    """v(x, t, features) = W·x + b, per chunk step."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)

    def forward(self, x: torch.Tensor, t: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def test_flow_loss_averages_over_the_masked_in_steps_only() -> None:
    torch.manual_seed(0)
    expert = _LinearVelocity()
    actions, noise, t, features = torch.randn(3, 4, 2), torch.randn(3, 4, 2), torch.rand(3), torch.zeros(3, 1)
    mask = torch.tensor([[True, True, True, True], [True, True, False, False], [True, False, False, False]])
    loss = flow_matching_loss(expert, actions, features, noise=noise, t=t, mask=mask)
    squared = (expert(interpolate(noise, actions, t), t, features) - (actions - noise)) ** 2
    torch.testing.assert_close(loss, squared[mask].mean())
    padded, padded_noise = actions.clone(), noise.clone()
    padded[~mask], padded_noise[~mask] = 100.0, -100.0
    torch.testing.assert_close(flow_matching_loss(expert, padded, features, noise=padded_noise, t=t, mask=mask), loss)
    nothing = flow_matching_loss(expert, actions, features, noise=noise, t=t, mask=torch.zeros_like(mask))
    nothing.backward()
    assert nothing.item() == 0.0 and all(p.grad is not None and not p.grad.any() for p in expert.parameters())
    with pytest.raises(ValueError, match="mask must be"):
        flow_matching_loss(expert, actions, features, mask=mask[:, :2])


def test_bc_learns_a_bimodal_conditional_action_distribution() -> None:
    """Context A: actions are +1 or −1 (50/50) on every step; context B: always 0.5. The flow must keep both modes."""
    torch.manual_seed(0)
    config = VLAConfig(horizon=4, action_dim=2, feature_dim=8, time_embedding_dim=16, expert_width=128, expert_blocks=2)
    expert = ActionExpert(config)
    contexts = torch.eye(8)[:2]
    optimizer = torch.optim.Adam(expert.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(600):
        which = torch.randint(0, 2, (128,), generator=generator)
        signs = torch.randint(0, 2, (128, 1, 1), generator=generator).float() * 2 - 1
        actions = torch.where(which.view(-1, 1, 1) == 0, signs.expand(128, 4, 2), torch.full((128, 4, 2), 0.5))
        loss = flow_matching_loss(expert, actions, contexts[which], generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model = FlowMatchingVLA(config)
    model.action_expert = copy.deepcopy(expert)
    with torch.no_grad():
        samples_a = model.sample(contexts[0].expand(400, 8), generator=torch.Generator().manual_seed(2), steps=20)
        samples_b = model.sample(contexts[1].expand(400, 8), generator=torch.Generator().manual_seed(3), steps=20)
    per_sample = samples_a.mean(dim=(1, 2))
    assert torch.mean(torch.abs(per_sample.abs() - 1.0)).item() < 0.15
    assert 0.3 < (per_sample > 0).float().mean().item() < 0.7
    assert torch.mean(torch.abs(samples_b - 0.5)).item() < 0.1


def test_normalizer_round_trip_and_errors() -> None:
    generator = torch.Generator().manual_seed(0)
    proprio = torch.randn(100, 14, generator=generator).numpy() * 3 + 1
    actions = torch.rand(100, 14, generator=generator).numpy() * 4 - 1
    for mode in ("mean_std", "min_max"):
        normalizer = Normalizer.from_data(proprio, actions, mode)
        restored = Normalizer.from_json(normalizer.to_json())
        normalized = restored.normalize_action(torch.from_numpy(actions))
        if mode == "min_max":
            assert normalized.min().item() == pytest.approx(-1.0) and normalized.max().item() == pytest.approx(1.0)
        else:
            assert normalized.mean().abs().item() < 1e-6
        assert torch.allclose(restored.unnormalize_action(normalized), torch.from_numpy(actions), atol=1e-5)
    with pytest.raises(NormalizationError, match="statistics have 14"):
        normalizer.normalize_proprio(torch.zeros(3, 7))
    with pytest.raises(NormalizationError, match="NaN"):
        Normalizer.from_data(proprio * float("nan"), actions)
    with pytest.raises(NormalizationError, match="malformed"):
        Normalizer.from_dict({"format": 1, "mode": "mean_std"})


def _square_scenes(config: VLAConfig, size: int, generator: torch.Generator) -> tuple[ObservationBatch, torch.Tensor]:
    """Dark images with one bright 4×4 square each, and the square's position (metres, as a recorded pose)."""
    rows = torch.randint(0, config.image_height - 4, (size,), generator=generator)
    cols = torch.randint(0, config.image_width - 4, (size,), generator=generator)
    images = torch.zeros(size, 3, config.image_height, config.image_width, dtype=torch.uint8)
    for index, (row, col) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        images[index, :, row : row + 4, col : col + 4] = 255
    positions = torch.stack([cols / config.image_width, rows / config.image_height, torch.zeros(size)], dim=-1)
    batch = ObservationBatch({"top": images}, torch.zeros(size, config.language_dim), torch.zeros(size, 14))
    return batch, 0.3 * positions[:, None, :]


def test_the_object_head_learns_where_an_object_is_from_pixels(small_config: VLAConfig) -> None:
    torch.manual_seed(0)
    config = small_config.replace(perceived_objects=1)
    model = FlowMatchingVLA(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    test_batch, test_positions = _square_scenes(config, 64, generator)
    with torch.no_grad():
        before = float(model.encode_for_training(test_batch, test_positions)[1])
    for _ in range(300):
        batch, positions = _square_scenes(config, 32, generator)
        loss = model.encode_for_training(batch, positions)[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = float(model.encode_for_training(test_batch, test_positions)[1])
    label_variance = float((test_positions / 0.1).var(dim=0).sum() / 3)
    assert after < 0.1 * label_variance < before, (before, after, label_variance)


def test_perceived_positions_join_the_features_but_only_the_auxiliary_loss_trains_the_head(
    small_config: VLAConfig,
) -> None:
    config = small_config.replace(perceived_objects=2)
    model = FlowMatchingVLA(config)
    batch = _batch(config)
    features, auxiliary = model.encode_for_training(batch)
    assert auxiliary is None and torch.equal(features, model.encode(batch))
    features.sum().backward()
    assert all(p.grad is None for p in model.objects.parameters())
    with torch.no_grad():
        model.objects.net[-1].bias.add_(1.0)
        assert not torch.allclose(model.encode(batch), features)
    one_known = torch.full((3, 1, 3), float("nan"))
    one_known[0] = 0.05
    _, auxiliary = model.encode_for_training(batch, one_known)
    auxiliary.backward()
    assert torch.isfinite(auxiliary) and all(torch.isfinite(p.grad).all() for p in model.objects.parameters())
    with pytest.raises(ConfigError, match="perceived_objects"):
        small_config.replace(perceived_objects=-1)


def test_keypoint_loss_compares_each_camera_s_first_keypoints_with_the_objects_pixels() -> None:
    config = VLAConfig(cameras=("top", "side"), image_height=16, image_width=16, perceived_objects=2)
    model = FlowMatchingVLA(config)
    keypoints = model.perceive(_batch(config, size=4).images)
    per_camera = keypoints.reshape(4, 2, config.vision_keypoints, 2)
    pixels = torch.rand(4, 2, 3, 2) * 2 - 1
    pixels[0, 1, 0] = float("nan")
    known = torch.isfinite(pixels[:, :, :2])
    expected = ((per_camera[:, :, :2] - pixels[:, :, :2].nan_to_num()) ** 2)[known].mean()
    torch.testing.assert_close(model.keypoint_loss(keypoints, pixels), expected)
    pixels[:, :, 2] = 5.0
    torch.testing.assert_close(model.keypoint_loss(keypoints, pixels), expected, msg="a third object is not read")
    one_object = model.keypoint_loss(keypoints, pixels[:, :, :1])
    assert one_object is not None and torch.isfinite(one_object), "fewer objects than keypoints pads with unknowns"
    assert FlowMatchingVLA(VLAConfig(image_height=16, image_width=16)).keypoint_loss(keypoints, pixels) is None


def test_keypoint_loss_teaches_the_trunk_where_things_are() -> None:
    """Descending the keypoint loss alone moves the supervised keypoints onto their targets."""
    torch.manual_seed(0)
    config = VLAConfig(image_height=16, image_width=16, perceived_objects=1, vision_channels=(16, 16))
    model = FlowMatchingVLA(config)
    images = _batch(config, size=8).images
    pixels = torch.rand(8, 1, 1, 2) * 1.2 - 0.6
    optimizer = torch.optim.Adam(model.vision.parameters(), lr=3e-3)
    start = model.keypoint_loss(model.perceive(images), pixels).item()
    for _ in range(200):
        loss = model.keypoint_loss(model.perceive(images), pixels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * start

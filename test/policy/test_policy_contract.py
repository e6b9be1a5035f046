"""The policy contract and registry: a second policy type (``tiny_policy``) saves, loads and serves like the VLA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lwd_policy.checkpoint import load_checkpoint, save_checkpoint
from lwd_policy.config import VLAConfig
from lwd_policy.contract import (
    PolicyConfig,
    PolicyModel,
    PolicyTypeError,
    build_policy,
    known_policy_types,
    lookup_policy_type,
    policy_type_of,
    register_policy,
)
from lwd_policy.inference import PolicyObservation
from lwd_policy.language import InstructionEncoder
from lwd_policy.model import FlowMatchingVLA
from lwd_policy.normalization import Normalizer
from lwd_policy.runtime import CommandStatus, InferenceRuntime, RuntimeConfig
from lwd_policy.safety import robot_limits
from policy.tiny_policy import TinyPolicy, TinyPolicyConfig

TINY = TinyPolicyConfig(image_height=12, image_width=16, horizon=8, flow_steps=3)


def test_the_registry_maps_type_names_to_config_and_model_classes() -> None:
    assert {"FlowMatchingVLA", "TinyMLPPolicy"} <= set(known_policy_types())
    assert lookup_policy_type("FlowMatchingVLA").model_class is FlowMatchingVLA
    assert policy_type_of(TINY).name == "TinyMLPPolicy" and policy_type_of(VLAConfig()).config_class is VLAConfig
    model = build_policy(TINY)
    assert isinstance(model, TinyPolicy) and model.config is TINY and policy_type_of(model).name == "TinyMLPPolicy"
    with pytest.raises(PolicyTypeError, match=r"unknown policy type 'pi0'; known types: \[.*'FlowMatchingVLA'"):
        lookup_policy_type("pi0")
    with pytest.raises(PolicyTypeError, match="is configured by TinyPolicyConfig, got VLAConfig"):
        lookup_policy_type("TinyMLPPolicy").build(VLAConfig())
    with pytest.raises(PolicyTypeError, match=r"PolicyConfig is not the config or model class .* known types"):
        build_policy(PolicyConfig())


def test_registration_refuses_taken_names_and_classes_outside_the_contract() -> None:
    assert register_policy("TinyMLPPolicy", TinyPolicyConfig)(TinyPolicy) is TinyPolicy

    class Other(TinyPolicy):
        """A subclass of a registered model: a class of its own, never registered."""

    with pytest.raises(PolicyTypeError, match="type 'TinyMLPPolicy' already uses"):
        register_policy("TinyMLPPolicy", TinyPolicyConfig)(Other)
    with pytest.raises(PolicyTypeError, match="type 'TinyMLPPolicy' already uses"):
        register_policy("Other", TinyPolicyConfig)(Other)
    with pytest.raises(PolicyTypeError, match="not a PolicyModel subclass"):
        register_policy("Plain", TinyPolicyConfig)(torch.nn.Linear)
    assert "Other" not in known_policy_types() and "Plain" not in known_policy_types()
    with pytest.raises(TypeError, match="abstract"):
        PolicyModel(TINY)


def test_a_tiny_policy_checkpoint_loads_through_the_registry_and_serves_in_the_runtime(
    tmp_path: Path, encoder: InstructionEncoder
) -> None:
    torch.manual_seed(0)
    model = TinyPolicy(TINY).eval()
    manifest = save_checkpoint(model, Normalizer.identity(TINY.state_dim, TINY.action_dim), tmp_path / "tiny", "v1")
    assert manifest.facts["policy_type"] == "TinyMLPPolicy"
    loaded = load_checkpoint(tmp_path / "tiny", expected=TINY)
    assert isinstance(loaded.model, TinyPolicy) and loaded.config == TINY
    features = torch.randn(2, TINY.feature_dim)
    with torch.no_grad():
        expected = model.sample(features, generator=torch.Generator().manual_seed(1))
        assert torch.equal(loaded.model.sample(features, generator=torch.Generator().manual_seed(1)), expected)

    settings = RuntimeConfig(mode="lockstep", low_water=4, noise_scale=1.0)
    runtime = InferenceRuntime.from_checkpoint(tmp_path / "tiny", robot_limits(), settings, encoder=encoder)
    images = {"top": np.full((24, 32, 3), 90, np.uint8)}
    steps = [runtime.step(PolicyObservation(i * 0.02, np.zeros(14), images, "pick"), i * 0.02) for i in range(12)]
    assert all(step.status is CommandStatus.POLICY and step.policy_version == "v1" for step in steps)
    assert all(np.isfinite(step.command).all() for step in steps)
    assert len({chunk.chunk_id for step in steps for chunk in step.new_chunks}) >= 2

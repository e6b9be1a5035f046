"""Shared fixtures for the lwd_policy tests: a small model config, checkpoints, the instruction encoder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from lwd_policy.checkpoint import save_checkpoint
from lwd_policy.config import VLAConfig
from lwd_policy.language import InstructionEncoder
from lwd_policy.model import FlowMatchingVLA
from lwd_policy.normalization import Normalizer

SMALL = VLAConfig(
    image_height=24,
    image_width=32,
    horizon=8,
    flow_steps=4,
    vision_channels=(8, 16),
    vision_groups=4,
    vision_dim=32,
    language_proj_dim=32,
    proprio_hidden=16,
    feature_dim=32,
    time_embedding_dim=16,
    expert_width=64,
    expert_blocks=1,
)


@pytest.fixture
def small_config() -> VLAConfig:
    """A 14-D ALOHA-shaped config, small enough to run many inferences per second in tests."""
    return SMALL


@pytest.fixture(scope="session")
def encoder() -> InstructionEncoder:
    """The real bundled MiniLM encoder, loaded once per session."""
    return InstructionEncoder()


@pytest.fixture
def make_checkpoint(tmp_path: Path) -> Callable[..., Path]:
    """Factory: write a randomly initialised policy checkpoint and return its folder."""

    def make(version: str, seed: int = 0, config: VLAConfig = SMALL) -> Path:
        torch.manual_seed(seed)
        folder = tmp_path / version
        normalizer = Normalizer.identity(config.state_dim, config.action_dim)
        save_checkpoint(FlowMatchingVLA(config), normalizer, folder, version)
        return folder

    return make

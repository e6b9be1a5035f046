"""Bounds before allocation: a checkpoint's config is checked against stated limits and against its weight file's
own tensor shapes before any model is built, and its statistics against the robot profile's joint limits."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from lwd.cli import main
from lwd_interfaces.manifest import build_manifest, read_manifest, write_manifest
from lwd_interfaces.robots import robot_description
from lwd_policy.checkpoint import CheckpointError, load_checkpoint
from lwd_policy.config import VLAConfig
from lwd_policy.contract import ConfigError
from lwd_policy.model import FlowMatchingVLA


def _edit(folder: Path, name: str, change: Callable[[dict], None]) -> None:
    """Change one JSON file of a checkpoint and recommit its manifest, so only the deeper checks can object."""
    body = json.loads((folder / name).read_text())
    change(body)
    (folder / name).write_text(json.dumps(body))
    write_manifest(folder, build_manifest(folder, "policy", read_manifest(folder).facts))


@pytest.fixture
def built_on(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The device type each ``FlowMatchingVLA`` was built on; a real (non-meta) build of 60000 width fails."""
    devices: list[str] = []
    original = FlowMatchingVLA.__init__

    def recording_init(self, config=None) -> None:
        devices.append(torch.empty(0).device.type)
        if devices[-1] != "meta" and config is not None and config.expert_width > 4096:
            raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 14400000000 bytes")
        original(self, config)

    monkeypatch.setattr(FlowMatchingVLA, "__init__", recording_init)
    return devices


def test_a_width_above_its_limit_is_refused_before_any_model_is_built(make_checkpoint, built_on) -> None:
    folder = make_checkpoint("v000001")
    built_on.clear()
    _edit(folder, "config.json", lambda config: config.update(expert_width=60000))
    with pytest.raises(CheckpointError, match=r"expert_width is 60000, above its limit of 4096"):
        load_checkpoint(folder)
    assert built_on == []


def test_every_width_field_has_a_stated_limit() -> None:
    assert set(VLAConfig.LIMITS) >= {"expert_width", "expert_blocks", "feature_dim", "vision_channels", "horizon"}
    with pytest.raises(ConfigError, match="vision_channels"):
        VLAConfig(vision_channels=(8, 100_000), vision_groups=4)
    with pytest.raises(ConfigError, match="image_height"):
        VLAConfig(image_height=10**6)


def test_a_config_that_does_not_fit_the_weight_file_is_refused_before_the_model_is_built(
    make_checkpoint, built_on
) -> None:
    folder = make_checkpoint("v000001")
    built_on.clear()
    _edit(folder, "config.json", lambda config: config.update(expert_width=4000))
    with pytest.raises(CheckpointError, match=r"model.safetensors: tensor .* has shape .* the config needs"):
        load_checkpoint(folder)
    assert built_on == ["meta"]  # shapes only: no weights allocated


def test_a_normalization_scale_of_1e38_is_refused_naming_the_field(make_checkpoint) -> None:
    folder = make_checkpoint("v000001")
    _edit(folder, "normalization.json", lambda stats: stats["action"]["scale"].__setitem__(3, 1e38))
    with pytest.raises(CheckpointError, match=r"action\.scale\[3\] = 1e\+38"):
        load_checkpoint(folder)


def test_an_action_mean_far_outside_the_joint_limits_is_refused(make_checkpoint) -> None:
    folder = make_checkpoint("v000001")
    _edit(folder, "normalization.json", lambda stats: stats["action"]["shift"].__setitem__(2, 40.0))
    with pytest.raises(CheckpointError, match=r"action\.shift\[2\] = 40.*left_arm_elbow.*aloha"):
        load_checkpoint(folder, robot=robot_description("aloha"))
    assert main(["policy", "verify", str(folder), "--robot", "aloha"]) == 1
    assert load_checkpoint(folder).version == "v000001"  # without a robot, only the robot-free bounds apply


def test_identity_statistics_suit_the_robot(make_checkpoint) -> None:
    assert load_checkpoint(make_checkpoint("v000001"), robot=robot_description("aloha_sim")).version == "v000001"


def test_policy_verify_prints_one_line_and_fails_on_a_huge_config(make_checkpoint, built_on, capsys) -> None:
    folder = make_checkpoint("v000001")
    _edit(folder, "config.json", lambda config: config.update(expert_width=60000))
    assert main(["policy", "verify", str(folder)]) == 1
    out = capsys.readouterr()
    assert out.out.count("\n") == 1 and out.out.startswith("INVALID:") and "expert_width" in out.out
    assert "Traceback" not in out.out + out.err

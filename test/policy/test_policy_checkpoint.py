"""Policy checkpoints: round trip, and refusal of corrupt or mismatched artifacts with a clear error."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from lwd_interfaces.manifest import build_manifest, read_manifest, write_manifest
from lwd_policy.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lwd_policy.config import VLAConfig
from lwd_policy.model import FlowMatchingVLA
from lwd_policy.normalization import Normalizer
from safetensors.torch import load_file, save_file


def _recommit(folder: Path) -> None:
    """Rewrite the manifest after tampering, so only the deeper checks can catch the change."""
    facts = read_manifest(folder).facts
    write_manifest(folder, build_manifest(folder, "policy", facts))


def test_round_trip_reproduces_outputs(small_config: VLAConfig, tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = FlowMatchingVLA(small_config).eval()
    normalizer = Normalizer.from_data(torch.randn(50, 14).numpy(), torch.randn(50, 14).numpy(), "min_max")
    manifest = save_checkpoint(model, normalizer, tmp_path / "v000003", "v000003", facts={"updates": 12})
    assert {f.path for f in manifest.files} == {"model.safetensors", "config.json", "normalization.json"}
    assert manifest.kind == "policy" and manifest.facts["version"] == "v000003" and manifest.facts["updates"] == 12
    loaded = load_checkpoint(tmp_path / "v000003", expected=small_config)
    assert loaded.version == "v000003" and loaded.config == small_config
    assert loaded.normalizer.to_dict() == normalizer.to_dict()
    features = torch.randn(2, small_config.feature_dim)
    with torch.no_grad():
        expected = model.sample(features, generator=torch.Generator().manual_seed(1))
        actual = loaded.model.sample(features, generator=torch.Generator().manual_seed(1))
    assert torch.equal(expected, actual)
    with pytest.raises(CheckpointError, match="refusing to overwrite"):
        save_checkpoint(model, normalizer, tmp_path / "v000003", "v000003")
    with pytest.raises(CheckpointError, match="invalid policy version"):
        save_checkpoint(model, normalizer, tmp_path / "bad", "../escape")


def test_a_save_interrupted_while_writing_its_manifest_can_be_redone(small_config: VLAConfig, tmp_path: Path) -> None:
    model = FlowMatchingVLA(small_config).eval()
    normalizer = Normalizer.from_data(torch.randn(50, 14).numpy(), torch.randn(50, 14).numpy(), "min_max")
    folder = tmp_path / "v000004"
    folder.mkdir()
    (folder / "manifest.json.tmp").write_text('{"kind": "policy", "files": [')
    manifest = save_checkpoint(model, normalizer, folder, "v000004")
    assert "manifest.json.tmp" not in {f.path for f in manifest.files}
    assert load_checkpoint(folder).version == "v000004"


def test_flipped_byte_fails_the_manifest(make_checkpoint: Callable[..., Path]) -> None:
    folder = make_checkpoint("v000001")
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(folder)


def test_missing_manifest_is_not_a_checkpoint(make_checkpoint: Callable[..., Path]) -> None:
    folder = make_checkpoint("v000001")
    (folder / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match=r"no manifest\.json"):
        load_checkpoint(folder)


def test_incompatible_config_is_refused(make_checkpoint: Callable[..., Path], small_config: VLAConfig) -> None:
    folder = make_checkpoint("v000002", config=small_config.replace(horizon=12))
    with pytest.raises(CheckpointError, match="horizon: expected 8, got 12"):
        load_checkpoint(folder, expected=small_config)
    assert load_checkpoint(folder).config.horizon == 12


def test_tensor_shape_mismatch_is_refused(make_checkpoint: Callable[..., Path]) -> None:
    folder = make_checkpoint("v000001")
    config = json.loads((folder / "config.json").read_text())
    config["expert_width"] = 48
    (folder / "config.json").write_text(json.dumps(config))
    _recommit(folder)
    with pytest.raises(CheckpointError, match=r"has shape .* needs"):
        load_checkpoint(folder)


def test_nan_weights_and_missing_tensors_are_refused(make_checkpoint: Callable[..., Path]) -> None:
    folder = make_checkpoint("v000001")
    tensors = load_file(str(folder / "model.safetensors"))
    name = next(key for key in tensors if key.endswith("weight"))
    tensors[name][0] = float("nan")
    save_file(tensors, str(folder / "model.safetensors"))
    _recommit(folder)
    with pytest.raises(CheckpointError, match="NaN or infinity"):
        load_checkpoint(folder)
    del tensors[name]
    save_file(tensors, str(folder / "model.safetensors"))
    _recommit(folder)
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(folder)


def test_garbage_config_and_stats_are_refused(make_checkpoint: Callable[..., Path]) -> None:
    folder = make_checkpoint("v000001")
    (folder / "normalization.json").write_text('{"format": 1, "mode": "mean_std", "proprio": {}}')
    _recommit(folder)
    with pytest.raises(CheckpointError, match="malformed normalization"):
        load_checkpoint(folder)
    (folder / "config.json").write_text("{not json")
    _recommit(folder)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(folder)


def test_the_policy_type_is_recorded_and_an_unknown_or_missing_one_is_refused(
    make_checkpoint: Callable[..., Path],
) -> None:
    folder = make_checkpoint("v000001")
    facts = read_manifest(folder).facts
    assert facts["policy_type"] == "FlowMatchingVLA"
    del facts["policy_type"]

    def recommit(**type_facts: str) -> None:
        write_manifest(folder, build_manifest(folder, "policy", {**facts, **type_facts}))

    recommit(model_class="FlowMatchingVLA")  # what checkpoints written before the policy registry record
    assert isinstance(load_checkpoint(folder).model, FlowMatchingVLA)
    recommit(policy_type="pi0")
    with pytest.raises(CheckpointError, match=r"unknown policy type 'pi0'; known types: \[.*'FlowMatchingVLA'"):
        load_checkpoint(folder)
    recommit()
    with pytest.raises(CheckpointError, match=r"records no policy_type .*known types: \[.*'FlowMatchingVLA'"):
        load_checkpoint(folder)

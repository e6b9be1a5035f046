"""Policy checkpoints: a folder of safetensors weights, JSON config and stats, and a manifest.

Layout (docs/contracts.md): ``model.safetensors``, ``config.json``,
``normalization.json`` and ``manifest.json`` (kind ``policy``, written last,
facts carry the version). Loading checks, in order: the manifest (sha256 of
every file), the config, the normalization stats, then every tensor's name,
shape and finiteness. Any mismatch is a ``CheckpointError`` that says what is
wrong. No pickle is read or written anywhere.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from lwd_interfaces.manifest import Manifest, ManifestError, build_manifest, verify_folder, write_manifest
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lwd_policy.config import ConfigError, VLAConfig
from lwd_policy.model import FlowMatchingVLA
from lwd_policy.normalization import NormalizationError, Normalizer

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
NORMALIZATION_NAME = "normalization.json"
POLICY_KIND = "policy"
MODEL_CLASS = "FlowMatchingVLA"
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class CheckpointError(ValueError):
    """A policy checkpoint is missing, corrupt, or does not fit the expected model."""


@dataclass
class PolicyCheckpoint:
    """A verified, loaded policy: the model (eval mode), its normalizer, config, version and manifest."""

    model: FlowMatchingVLA
    normalizer: Normalizer
    config: VLAConfig
    version: str
    manifest: Manifest

    @property
    def digest(self) -> str:
        """sha256 of the manifest: identifies these exact weights."""
        return self.manifest.digest


def check_version(version: str) -> str:
    """Return ``version`` if it is a safe version string (e.g. ``v000042-canary``), else raise CheckpointError."""
    if not isinstance(version, str) or not VERSION_PATTERN.match(version):
        raise CheckpointError(f"invalid policy version {version!r}: use letters, digits, '.', '_' or '-'")
    return version


def save_checkpoint(
    model: FlowMatchingVLA,
    normalizer: Normalizer,
    folder: str | os.PathLike[str],
    version: str,
    facts: dict[str, object] | None = None,
) -> Manifest:
    """Write ``model`` and ``normalizer`` as a policy artifact in ``folder`` (created; must hold no manifest yet).

    ``facts`` are extra manifest facts (e.g. training step, parent version). Returns the written manifest.
    """
    check_version(version)
    config: VLAConfig = model.config
    if normalizer.proprio.dim != config.state_dim or normalizer.action.dim != config.action_dim:
        raise CheckpointError(
            f"normalizer dims (proprio {normalizer.proprio.dim}, action {normalizer.action.dim}) do not match "
            f"config (proprio {config.state_dim}, action {config.action_dim})"
        )
    root = Path(folder)
    if (root / "manifest.json").exists():
        raise CheckpointError(f"{root} already holds a committed artifact; refusing to overwrite it")
    root.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in model.state_dict().items()}
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"refusing to save: tensor {name!r} holds NaN or infinity")
    save_file(tensors, str(root / WEIGHTS_NAME), metadata={"version": version, "model_class": MODEL_CLASS})
    (root / CONFIG_NAME).write_text(config.to_json())
    (root / NORMALIZATION_NAME).write_text(normalizer.to_json())
    all_facts = {"version": version, "model_class": MODEL_CLASS, **(facts or {})}
    manifest = build_manifest(root, POLICY_KIND, all_facts)
    write_manifest(root, manifest)
    return manifest


def load_checkpoint(
    folder: str | os.PathLike[str],
    expected: VLAConfig | None = None,
    device: str = "cpu",
) -> PolicyCheckpoint:
    """Verify and load a policy artifact; ``expected`` (optional) must be I/O-compatible with its config.

    Raises CheckpointError naming the folder and what failed.
    """
    root = Path(folder)
    try:
        manifest = verify_folder(root, kind=POLICY_KIND)
    except ManifestError as error:
        raise CheckpointError(f"policy checkpoint {root} fails verification: {error}") from error
    listed = {entry.path for entry in manifest.files}
    for name in (WEIGHTS_NAME, CONFIG_NAME, NORMALIZATION_NAME):
        if name not in listed:
            raise CheckpointError(f"policy checkpoint {root}: manifest does not list {name}")
    version = check_version(manifest.facts.get("version", ""))
    model_class = manifest.facts.get("model_class", MODEL_CLASS)
    if model_class != MODEL_CLASS:
        raise CheckpointError(f"policy checkpoint {root} holds a {model_class!r}, this loader builds {MODEL_CLASS}")
    try:
        config = VLAConfig.from_json((root / CONFIG_NAME).read_bytes())
        if expected is not None:
            expected.check_compatible(config)
    except ConfigError as error:
        raise CheckpointError(f"policy checkpoint {root}: {error}") from error
    try:
        normalizer = Normalizer.from_json((root / NORMALIZATION_NAME).read_bytes())
    except NormalizationError as error:
        raise CheckpointError(f"policy checkpoint {root}: {error}") from error
    if normalizer.proprio.dim != config.state_dim or normalizer.action.dim != config.action_dim:
        raise CheckpointError(
            f"policy checkpoint {root}: normalization dims (proprio {normalizer.proprio.dim}, action "
            f"{normalizer.action.dim}) differ from config (proprio {config.state_dim}, action {config.action_dim})"
        )
    try:
        tensors = load_file(str(root / WEIGHTS_NAME), device=device)
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as error:
        raise CheckpointError(f"policy checkpoint {root}: unreadable {WEIGHTS_NAME}: {error}") from error
    model = FlowMatchingVLA(config)
    _check_tensors(root, model.state_dict(), tensors)
    model.load_state_dict(tensors, strict=True)
    model.to(device).eval()
    return PolicyCheckpoint(model=model, normalizer=normalizer, config=config, version=version, manifest=manifest)


def _check_tensors(root: Path, reference: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> None:
    missing = sorted(set(reference) - set(tensors))
    unexpected = sorted(set(tensors) - set(reference))
    if missing or unexpected:
        raise CheckpointError(
            f"policy checkpoint {root}: tensor names differ from the config's model "
            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})"
        )
    for name, expected in reference.items():
        tensor = tensors[name]
        if tuple(tensor.shape) != tuple(expected.shape):
            raise CheckpointError(
                f"policy checkpoint {root}: tensor {name!r} has shape {tuple(tensor.shape)}, "
                f"the config's model needs {tuple(expected.shape)}"
            )
        if tensor.dtype != expected.dtype:
            raise CheckpointError(
                f"policy checkpoint {root}: tensor {name!r} is {tensor.dtype}, expected {expected.dtype}"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"policy checkpoint {root}: tensor {name!r} holds NaN or infinity")

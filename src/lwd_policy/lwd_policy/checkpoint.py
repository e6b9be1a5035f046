"""Policy checkpoints: a folder of safetensors weights, JSON config and stats, and a manifest.

Layout (docs/contracts.md): ``model.safetensors``, ``config.json``,
``normalization.json`` and ``manifest.json`` (kind ``policy``, written last,
facts carry the version and the policy type). The policy type is the name the
model's class is registered under (``lwd_policy.contract``); loading looks it up
to parse the config and build the model, so any registered policy saves and
loads the same way. Loading checks, in order: the manifest (sha256 of every
file), the policy type, the config, the normalization stats, then every
tensor's name, shape and finiteness. Any mismatch is a ``CheckpointError`` that
says what is wrong. No pickle is read or written anywhere.
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

from lwd_policy.contract import (
    ConfigError,
    PolicyConfig,
    PolicyModel,
    PolicyTypeError,
    known_policy_types,
    lookup_policy_type,
    policy_type_of,
)
from lwd_policy.normalization import NormalizationError, Normalizer

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
NORMALIZATION_NAME = "normalization.json"
POLICY_KIND = "policy"
POLICY_TYPE_FACT = "policy_type"
LEGACY_POLICY_TYPE_FACT = "model_class"
"""Checkpoints written before policy types were registered name their type (always ``FlowMatchingVLA``) here."""
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class CheckpointError(ValueError):
    """A policy checkpoint is missing, corrupt, or does not fit the expected model."""


@dataclass
class PolicyCheckpoint:
    """A verified, loaded policy: the model (eval mode), its normalizer, config, version and manifest."""

    model: PolicyModel
    normalizer: Normalizer
    config: PolicyConfig
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
    model: PolicyModel,
    normalizer: Normalizer,
    folder: str | os.PathLike[str],
    version: str,
    facts: dict[str, object] | None = None,
) -> Manifest:
    """Write ``model`` and ``normalizer`` as a policy artifact in ``folder`` (created; must hold no manifest yet).

    ``model``'s class must be a registered policy type, whose name the manifest records as ``policy_type``.
    ``facts`` are extra manifest facts (e.g. training step, parent version). Returns the written manifest.
    """
    check_version(version)
    try:
        policy_type = policy_type_of(model).name
    except PolicyTypeError as error:
        raise CheckpointError(f"cannot save a policy checkpoint: {error}") from error
    config = model.config
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
    save_file(tensors, str(root / WEIGHTS_NAME), metadata={"version": version, POLICY_TYPE_FACT: policy_type})
    (root / CONFIG_NAME).write_text(config.to_json())
    (root / NORMALIZATION_NAME).write_text(normalizer.to_json())
    all_facts = {"version": version, POLICY_TYPE_FACT: policy_type, **(facts or {})}
    manifest = build_manifest(root, POLICY_KIND, all_facts)
    write_manifest(root, manifest)
    return manifest


def load_checkpoint(
    folder: str | os.PathLike[str],
    expected: PolicyConfig | None = None,
    device: str = "cpu",
) -> PolicyCheckpoint:
    """Verify and load a policy artifact; ``expected`` (optional) must be I/O-compatible with its config.

    The model is built by the policy type the manifest records. Raises CheckpointError naming the folder
    and what failed (an unknown or unrecorded policy type lists the known ones).
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
    type_name = manifest.facts.get(POLICY_TYPE_FACT, manifest.facts.get(LEGACY_POLICY_TYPE_FACT))
    if not isinstance(type_name, str):
        raise CheckpointError(
            f"policy checkpoint {root}: manifest records no {POLICY_TYPE_FACT} (got {type_name!r}); "
            f"known types: {known_policy_types()}"
        )
    try:
        policy_type = lookup_policy_type(type_name)
    except PolicyTypeError as error:
        raise CheckpointError(f"policy checkpoint {root}: {error}") from error
    try:
        config = policy_type.config_class.from_json((root / CONFIG_NAME).read_bytes())
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
    model = policy_type.build(config)
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

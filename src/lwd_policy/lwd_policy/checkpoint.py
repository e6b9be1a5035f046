"""Policy checkpoints: a folder of safetensors weights, JSON config and stats, and a manifest.

Layout (docs/contracts.md): ``model.safetensors``, ``config.json``,
``normalization.json`` and ``manifest.json`` (kind ``policy``, written last,
facts carry the version and the policy type). The policy type is the name the
model's class is registered under (``lwd_policy.contract``); loading looks it up
to parse the config and build the model, so any registered policy saves and
loads the same way. Loading checks, in order: the manifest (sha256 of every
file), the policy type, the config (its fields within the config class's
``LIMITS``), the normalization stats (finite, of sane size, and when the
caller names the robot profile, near its joint limits), then every
tensor's name and shape as the weight file's header states them against the
shapes the config implies (a model built on the ``meta`` device: no memory),
and only then reads the tensors (dtype, finiteness) and builds the model. So
a config cannot make the loader allocate more than its weight file holds. Any
mismatch is a ``CheckpointError`` that says what is wrong. No pickle is read
or written anywhere.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from lwd_interfaces.manifest import Manifest, ManifestError, build_manifest, verify_folder, write_manifest
from lwd_interfaces.robot import RobotDescription
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from lwd_policy.contract import (
    ConfigError,
    PolicyConfig,
    PolicyModel,
    PolicyType,
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
MAX_STATISTIC = 1e3
"""Largest |shift| and scale of any normalization entry, in robot units (rad, normalized gripper, m)."""
MIN_SCALE = 1e-7
"""Smallest normalization scale (statistics computed from data floor it at 1e-6)."""
JOINT_RANGES = 4.0
"""How far, in joint ranges (each at least 1), a shift may lie outside a joint's limits, and the largest scale."""


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
    robot: RobotDescription | None = None,
) -> PolicyCheckpoint:
    """Verify and load a policy artifact; ``expected`` (optional) must be I/O-compatible with its config.

    With ``robot``, the normalization statistics must also suit that robot's joint limits (``statistics_problem``).

    The model is built by the policy type the manifest records. Raises CheckpointError naming the folder
    and what failed (an unknown or unrecorded policy type lists the known ones).
    """
    root = Path(folder)
    manifest = _verify_manifest(root)
    version = check_version(manifest.facts.get("version", ""))
    policy_type = _policy_type(root, manifest)
    try:
        config = policy_type.config_class.from_json((root / CONFIG_NAME).read_bytes())
        if expected is not None:
            expected.check_compatible(config)
    except ConfigError as error:
        raise CheckpointError(f"policy checkpoint {root}: {error}") from error
    normalizer = _read_normalizer(root, config, robot)
    implied = _implied_state(policy_type, config)
    _check_header(root, implied)
    try:
        tensors = load_file(str(root / WEIGHTS_NAME), device=device)
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as error:
        raise CheckpointError(f"policy checkpoint {root}: unreadable {WEIGHTS_NAME}: {error}") from error
    _check_tensors(root, implied, tensors)
    model = policy_type.build(config)
    model.load_state_dict(tensors, strict=True)
    model.to(device).eval()
    return PolicyCheckpoint(model=model, normalizer=normalizer, config=config, version=version, manifest=manifest)


def _verify_manifest(root: Path) -> Manifest:
    """The verified manifest, which must list the weights, the config and the statistics."""
    try:
        manifest = verify_folder(root, kind=POLICY_KIND)
    except ManifestError as error:
        raise CheckpointError(f"policy checkpoint {root} fails verification: {error}") from error
    listed = {entry.path for entry in manifest.files}
    for name in (WEIGHTS_NAME, CONFIG_NAME, NORMALIZATION_NAME):
        if name not in listed:
            raise CheckpointError(f"policy checkpoint {root}: manifest does not list {name}")
    return manifest


def _policy_type(root: Path, manifest: Manifest) -> PolicyType:
    """The registered policy type the manifest records."""
    type_name = manifest.facts.get(POLICY_TYPE_FACT, manifest.facts.get(LEGACY_POLICY_TYPE_FACT))
    if not isinstance(type_name, str):
        raise CheckpointError(
            f"policy checkpoint {root}: manifest records no {POLICY_TYPE_FACT} (got {type_name!r}); "
            f"known types: {known_policy_types()}"
        )
    try:
        return lookup_policy_type(type_name)
    except PolicyTypeError as error:
        raise CheckpointError(f"policy checkpoint {root}: {error}") from error


def _read_normalizer(root: Path, config: PolicyConfig, robot: RobotDescription | None) -> Normalizer:
    """The statistics, of the config's dimensions and sane (see ``statistics_problem``)."""
    try:
        normalizer = Normalizer.from_json((root / NORMALIZATION_NAME).read_bytes())
    except NormalizationError as error:
        raise CheckpointError(f"policy checkpoint {root}: {error}") from error
    if normalizer.proprio.dim != config.state_dim or normalizer.action.dim != config.action_dim:
        raise CheckpointError(
            f"policy checkpoint {root}: normalization dims (proprio {normalizer.proprio.dim}, action "
            f"{normalizer.action.dim}) differ from config (proprio {config.state_dim}, action {config.action_dim})"
        )
    problem = statistics_problem(normalizer, config, robot)
    if problem is not None:
        raise CheckpointError(f"policy checkpoint {root}: {NORMALIZATION_NAME}: {problem}")
    return normalizer


def statistics_problem(
    normalizer: Normalizer, config: PolicyConfig, robot: RobotDescription | None = None
) -> str | None:
    """What is wrong with the statistics, naming the entry, or None when they are sane.

    Every shift must be within ±``MAX_STATISTIC`` and every scale within [``MIN_SCALE``, ``MAX_STATISTIC``].
    With ``robot``, the actions must have its number of joints and suit its limits (``_robot_problem``).
    """
    for part, stats in (("proprio", normalizer.proprio), ("action", normalizer.action)):
        for index, (shift, scale) in enumerate(zip(stats.shift, stats.scale, strict=True)):
            if abs(shift) > MAX_STATISTIC:
                return f"{part}.shift[{index}] = {shift:g} is beyond ±{MAX_STATISTIC:g}"
            if not MIN_SCALE <= scale <= MAX_STATISTIC:
                return f"{part}.scale[{index}] = {scale:g} is outside [{MIN_SCALE:g}, {MAX_STATISTIC:g}]"
    if robot is None:
        return None
    if config.action_dim != robot.dof:
        return f"action has {config.action_dim} entries, robot {robot.name} has {robot.dof} joints"
    return _robot_problem(normalizer, config, robot)


def _robot_problem(normalizer: Normalizer, config: PolicyConfig, robot: RobotDescription) -> str | None:
    """Action statistics (and joint-position statistics, when ``proprio_dim`` is the robot's) that do not suit
    ``robot``: a shift more than ``JOINT_RANGES`` joint ranges outside the joint's limits, or a larger scale."""
    parts = [("action", normalizer.action)]
    if config.proprio_dim == robot.dof:
        parts.append(("proprio", normalizer.proprio))
    for part, stats in parts:
        for index, (joint, low, high) in enumerate(zip(robot.joint_names, robot.lower, robot.upper, strict=True)):
            margin = JOINT_RANGES * max(high - low, 1.0)
            shift, scale = stats.shift[index], stats.scale[index]
            if not low - margin <= shift <= high + margin:
                return (
                    f"{part}.shift[{index}] = {shift:g} is far outside joint {joint}'s limits "
                    f"[{low:g}, {high:g}] on robot {robot.name}"
                )
            if scale > margin:
                return f"{part}.scale[{index}] = {scale:g} is wider than joint {joint}'s range on robot {robot.name}"
    return None


def _implied_state(policy_type: PolicyType, config: PolicyConfig) -> dict[str, torch.Tensor]:
    """The state dict ``config`` implies, as meta tensors: every name, shape and dtype, no weight allocated."""
    with torch.device("meta"):
        return policy_type.build(config).state_dict()


def _check_header(root: Path, implied: dict[str, torch.Tensor]) -> None:
    """Compare the weight file's tensor names and shapes, read from its header alone, with the implied ones."""
    try:
        with safe_open(str(root / WEIGHTS_NAME), framework="pt") as weights:
            shapes = {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"policy checkpoint {root}: unreadable {WEIGHTS_NAME}: {error}") from error
    missing = sorted(set(implied) - set(shapes))
    unexpected = sorted(set(shapes) - set(implied))
    if missing or unexpected:
        raise CheckpointError(
            f"policy checkpoint {root}: {WEIGHTS_NAME}: tensor names differ from the config's model "
            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})"
        )
    for name, expected in implied.items():
        if shapes[name] != tuple(expected.shape):
            raise CheckpointError(
                f"policy checkpoint {root}: {WEIGHTS_NAME}: tensor {name!r} has shape {shapes[name]}, "
                f"the config needs {tuple(expected.shape)}"
            )


def _check_tensors(root: Path, implied: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> None:
    """Every read tensor has the implied dtype and holds only finite values."""
    for name, expected in implied.items():
        tensor = tensors[name]
        if tensor.dtype != expected.dtype:
            raise CheckpointError(
                f"policy checkpoint {root}: tensor {name!r} is {tensor.dtype}, expected {expected.dtype}"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"policy checkpoint {root}: tensor {name!r} holds NaN or infinity")

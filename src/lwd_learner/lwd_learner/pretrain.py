"""Offline BC pretraining: flow matching on demonstrations, full model (encoders included).

This produces the "pretrained VLA" the fleet starts from (``lwd train bc``). It is multi-task and
language-conditioned: every sample carries its episode's instruction embedding. With ``with_interventions`` the
operator-controlled steps of deployment episodes are added (the HG-DAgger baseline's data): a chunk starts at each
of them and is cloned up to the hand-back. Padding past an episode's end is never cloned. The model's auxiliary
loss (the object head) learns from the cloned frames or, ``perception_frames="recorded"``, from every frame
recorded with object positions. Episodes come from a local folder of bags or from a fleet store; decoded episodes
are cached by manifest sha256 like the trainer's. A bag that cannot be trained on is set aside with a named reason
(:mod:`lwd_fleet.quarantine`) and one log line naming it; the rest are used.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lwd_fleet.layout import EPISODE_MANIFESTS
from lwd_fleet.store import FleetStore
from lwd_interfaces.camera_projection import CameraCalibration
from lwd_interfaces.manifest import MANIFEST_NAME, ManifestError, build_manifest
from lwd_policy.checkpoint import save_checkpoint
from lwd_policy.contract import PolicyConfig, PolicyModel, build_policy
from lwd_policy.flow import flow_matching_loss
from lwd_policy.normalization import Normalizer

from lwd_fleet import quarantine
from lwd_learner.bc_frames import Batch, Frames, FrameTable
from lwd_learner.dataset import Episode, EpisodeError, verified_manifest
from lwd_learner.episode_cache import EpisodeCache
from lwd_learner.observations import TextEmbedder, check_episode, episode_state
from lwd_learner.pretrain_config import PretrainConfig

LOGGER = logging.getLogger(__name__)


class PretrainError(RuntimeError):
    """BC pretraining cannot run: no usable demonstrations, or the loss diverged."""


@dataclass(frozen=True)
class Rejection:
    """A bag set aside by ``load_episodes``: its folder, the reason's name (lwd_fleet.quarantine), the message."""

    path: str
    reason: str
    message: str


def reason_counts(rejections: list[Rejection]) -> dict[str, int]:
    """How many bags were set aside for each reason, by reason name."""
    return dict(sorted(Counter(item.reason for item in rejections).items()))


def find_episode_folders(source: str) -> list[Path]:
    """Local bag folders under ``source``: a store URL's committed episodes, or every bag folder below a directory.

    Store episodes (``file://`` stores) must verify against their manifest; bag folders without a manifest are
    accepted from a plain directory (e.g. ``ros2 bag record`` output).
    """
    if "://" in source:
        store = FleetStore(source)
        if not store.is_local:
            raise PretrainError(f"BC pretraining reads local stores only; copy {source} locally first")
        return sorted(Path(store.path(key)).parent for key in store.glob(EPISODE_MANIFESTS))
    root = Path(source)
    if not root.is_dir():
        raise PretrainError(f"{root} is not a folder of episode bags")
    return sorted(path.parent for path in root.rglob("metadata.yaml"))


def load_episodes(
    folders: list[Path],
    cache: EpisodeCache,
    cameras: tuple[str, ...],
    policy: PolicyConfig | None = None,
    on_reject: Callable[[Rejection], None] | None = None,
) -> list[Episode]:
    """Decode (or load from cache) every usable episode; each unusable one is set aside, logged and reported.

    With ``policy`` an episode must also fit it (joint count, object count, cameras). ``on_reject`` receives a
    ``Rejection`` for every bag set aside.
    """
    episodes = []
    for folder in folders:
        try:
            episode = cache.load(folder, _episode_key(folder), cameras)
            check_episode(episode, str(folder), policy)
        except EpisodeError as error:
            message = str(error) if str(folder) in str(error) else f"{folder}: {error}"
            rejection = Rejection(str(folder), error.reason, message)
        else:
            episodes.append(episode)
            continue
        LOGGER.warning("BC: set aside %s (%s): %s", folder, rejection.reason, rejection.message)
        if on_reject is not None:
            on_reject(rejection)
    return episodes


def _episode_key(folder: Path) -> str:
    """The cache key of a bag folder: its manifest's digest once it verifies, else the manifest it would get."""
    if (folder / MANIFEST_NAME).is_file():
        return verified_manifest(folder).digest
    try:
        return _content_key(folder)
    except ManifestError as error:
        raise EpisodeError(f"{folder}: {error}", quarantine.CORRUPT_BAG) from error


def _content_key(folder: Path) -> str:
    """sha256 identity of a bag folder that has no manifest: the digest of the manifest it would get."""
    return build_manifest(folder, "episode").digest


def _content_order(episode: Episode) -> str:
    """A sort key from what an episode holds (task, instruction, outcome, actions, joints, object poses).

    Unlike its bag's name or manifest digest, it does not change with the robot, folder or clock that recorded it.
    """
    digest = hashlib.sha256()
    for text in (episode.task, episode.instruction, episode.episode_kind, episode.outcome):
        digest.update(text.encode() + b"\0")
    for array in (episode.actions, episode.proprio, episode.intervention, episode.object_poses):
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _training_steps(episodes: list[Episode], with_interventions: bool) -> list[Frames]:
    """Steps to clone: every step of a successful demonstration, plus intervention steps when asked."""
    selected = []
    for index, episode in enumerate(episodes):
        if episode.is_demonstration and episode.success:
            selected.append(Frames(index, np.arange(episode.steps)))
        elif with_interventions and episode.intervention.any():
            selected.append(Frames(index, np.flatnonzero(episode.intervention)))
    return selected


def _perception_only_steps(episodes: list[Episode], cloned: list[Frames]) -> list[Frames]:
    """Every recorded frame with object positions that is not cloned, for the auxiliary loss alone."""
    taken = {part.episode: part.steps for part in cloned}
    selected = []
    for index, episode in enumerate(episodes):
        if episode.object_poses is None:
            continue
        steps = np.setdiff1d(np.arange(episode.steps), taken.get(index, ()))
        if len(steps):
            selected.append(Frames(index, steps, cloned=False))
    return selected


def pretrain_bc(
    episodes: list[Episode],
    policy_config: PolicyConfig,
    embedder: TextEmbedder,
    config: PretrainConfig,
    progress: Callable[[int, float], None] | None = None,
    calibration: CameraCalibration | None = None,
) -> tuple[PolicyModel, Normalizer]:
    """Train a fresh policy of ``policy_config``'s registered type by flow matching on the selected steps.

    With ``calibration`` (the cameras' projections) the perception steps also pull the model's image keypoints to
    where the objects appear (``PolicyModel.keypoint_loss``, weighted by ``config.keypoint_weight``).
    Returns the model with its normalizer. The result depends on which episodes are given, not on their order:
    a store lists them by robot and time, and which robot records which demonstration varies between recordings.
    """
    if calibration is not None:
        _check_calibration(calibration, policy_config, config)
    episodes = sorted(episodes, key=_content_order)
    selected = _training_steps(episodes, config.with_interventions)
    if not selected:
        raise PretrainError(
            f"none of the {len(episodes)} episodes holds demonstration"
            f"{' or intervention' if config.with_interventions else ''} steps to clone"
        )
    used = [episodes[part.episode] for part in selected]
    states = [episode_state(e, np.arange(e.steps), policy_config) for e in used]
    normalizer = Normalizer.from_data(np.concatenate(states), np.concatenate([e.actions for e in used]))
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = build_policy(policy_config)
    model.train()
    # fused: one kernel per step, 3-4x faster on CPU than torch's default per-tensor loop (bench/optimizer.py).
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    perception_optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.perception_lr, weight_decay=config.weight_decay, fused=True
    )
    cloned = FrameTable(episodes, selected, policy_config, normalizer, embedder)
    labelled = cloned
    if config.perception_frames == "recorded":
        parts = selected + _perception_only_steps(episodes, selected)
        labelled = FrameTable(episodes, parts, policy_config, normalizer, embedder)

    def descend(loss: torch.Tensor, step: int, total: int, optimizer: torch.optim.Optimizer) -> None:
        if not bool(torch.isfinite(loss)):
            raise PretrainError(f"BC loss became {float(loss)} at step {step}; no checkpoint written")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if progress is not None and (step % config.log_every == 0 or step == total):
            progress(step, float(loss.detach()))

    total = config.perception_steps + config.steps
    for step in range(1, config.perception_steps + 1):
        batch = labelled.batch(labelled.draw(rng, config.batch_size))
        keypoints = model.perceive(batch.observations.images) if calibration is not None else None
        _, auxiliary = model.encode_for_training(batch.observations, batch.positions, keypoints)
        if auxiliary is None:
            raise PretrainError(
                f"perception_steps={config.perception_steps} needs a model with an auxiliary loss "
                "(the built-in VLA: perceived_objects > 0)"
            )
        if calibration is not None:
            auxiliary = auxiliary + config.keypoint_weight * _keypoint_loss(model, keypoints, batch, calibration)
        descend(auxiliary, step, total, perception_optimizer)
    flow_frames, perception = labelled, None
    if config.perception_steps:
        _freeze_what_trained(model)
        flow_frames = cloned
        perception = cloned.perceive(model, config.batch_size)
    for step in range(config.perception_steps + 1, total + 1):
        batch = flow_frames.batch(flow_frames.draw(rng, config.batch_size), perception)
        features, auxiliary = model.encode_for_training(batch.observations, batch.positions, batch.perception)
        loss = flow_matching_loss(model, batch.actions, features, mask=batch.mask)
        if auxiliary is not None and auxiliary.requires_grad:
            loss = loss + config.auxiliary_weight * auxiliary
        descend(loss, step, total, optimizer)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    model.eval()
    return model, normalizer


def _check_calibration(calibration: CameraCalibration, policy: PolicyConfig, config: PretrainConfig) -> None:
    """Refuse a calibration that cannot label this run: no perception steps, or a camera missing or at another size."""
    if not config.perception_steps:
        raise PretrainError("a camera calibration labels the perception steps; set perception_steps > 0")
    for camera in policy.cameras:
        projection = calibration.cameras.get(camera)
        if projection is None:
            raise PretrainError(f"the camera calibration has no projection for camera {camera!r}")
        if (projection.width, projection.height) != (policy.image_width, policy.image_height):
            raise PretrainError(
                f"camera {camera!r} is calibrated for {projection.width}x{projection.height} images, "
                f"the policy reads {policy.image_width}x{policy.image_height}"
            )


def _keypoint_loss(
    model: PolicyModel, keypoints: torch.Tensor | None, batch: Batch, calibration: CameraCalibration
) -> torch.Tensor:
    pixels = calibration.normalized(batch.positions.numpy(), model.config.cameras)
    loss = None if keypoints is None else model.keypoint_loss(keypoints, torch.from_numpy(pixels).float())
    if loss is None:
        raise PretrainError("a camera calibration needs a model with image keypoints (the built-in VLA)")
    return loss


def _freeze_what_trained(model: PolicyModel) -> None:
    """Stop training the parameters the perception steps reached (those holding a gradient)."""
    for parameter in model.parameters():
        if parameter.grad is not None:
            parameter.requires_grad_(False)
            parameter.grad = None


def write_pretrained(
    model: PolicyModel, normalizer: Normalizer, out: str | Path, version: str, episodes: int, steps: int
) -> Path:
    """Save the pretrained policy as a checkpoint folder (``lwd_policy.checkpoint`` layout, manifest last)."""
    out = Path(out)
    save_checkpoint(
        model, normalizer, out, version, {"trained_by": "lwd train bc", "episodes": episodes, "steps": steps}
    )
    return out

"""Episode frames to the policy's ``ObservationBatch`` (images CHW uint8, instruction embedding, normalized state).

Shared by BC pretraining (which trains the encoders on these batches) and the
feature cache (which runs the frozen encoder on them once per frame). Images
recorded at another size than the model's are resized bilinearly.
``check_episode`` refuses, before any training, an episode these batches could not
be built from or that would poison the statistics (wrong joint count, NaN).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from lwd_policy.contract import ObservationBatch, PolicyConfig
from lwd_policy.normalization import Normalizer
from lwd_policy.proprio import ProprioError, policy_state

from lwd_fleet import quarantine
from lwd_learner.dataset import Episode, EpisodeError


class TextEmbedder(Protocol):
    """Anything that embeds instruction texts, like ``lwd_policy.language.InstructionEncoder``."""

    def embed(self, texts: list[str]) -> torch.Tensor:
        """Embeddings ``[len(texts), dim]``."""
        ...


def frame_images(episode: Episode, frames: np.ndarray, config: PolicyConfig) -> dict[str, torch.Tensor]:
    """The configured cameras' images at ``frames`` as uint8 ``[B, 3, h, w]``, resized to the model's size."""
    missing = [camera for camera in config.cameras if camera not in episode.images]
    if missing:
        raise EpisodeError(
            f"episode {episode.episode_id} has no images from the model's cameras {missing}", quarantine.MISSING_TOPICS
        )
    images = {}
    size = (config.image_height, config.image_width)
    for camera in config.cameras:
        chw = torch.from_numpy(np.ascontiguousarray(episode.images[camera][frames])).permute(0, 3, 1, 2)
        if tuple(chw.shape[-2:]) != size:
            resized = F.interpolate(chw.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
            chw = resized.round().clamp(0, 255).to(torch.uint8)
        images[camera] = chw.contiguous()
    return images


def episode_state(episode: Episode, frames: np.ndarray, config: PolicyConfig) -> np.ndarray:
    """The policy's low-dimensional state at ``frames``: joint positions, then object positions."""
    poses = None if episode.object_poses is None else episode.object_poses[frames]
    try:
        return policy_state(episode.proprio[frames], poses, config.object_slots)
    except ProprioError as error:
        raise EpisodeError(f"episode {episode.episode_id}: {error}", quarantine.INCONSISTENT_SHAPES) from error


def check_episode(episode: Episode, source: str, config: PolicyConfig | None = None) -> None:
    """Raise EpisodeError (naming ``source``, the bag) when ``episode`` must not be trained on: joint states or
    actions that are not finite, or (given the policy's ``config``) another joint count, object count or camera."""
    if not (np.isfinite(episode.proprio).all() and np.isfinite(episode.actions).all()):
        raise EpisodeError(f"{source}: executed actions or joint states hold NaN or infinity", quarantine.NON_FINITE)
    if config is None:
        return
    joints, actions = episode.proprio.shape[-1], episode.actions.shape[-1]
    if (joints, actions) != (config.proprio_dim, config.action_dim):
        raise EpisodeError(
            f"{source}: {joints} joint positions and {actions}-dim actions, the policy reads "
            f"{config.proprio_dim} and acts in {config.action_dim}",
            quarantine.WRONG_JOINT_COUNT,
        )
    try:
        episode_state(episode, np.arange(1), config)
        frame_images(episode, np.arange(1), config)
    except EpisodeError as error:
        raise EpisodeError(f"{source}: {error}", error.reason) from error


def observation_batch(
    episode: Episode, frames: np.ndarray, config: PolicyConfig, normalizer: Normalizer, embedder: TextEmbedder
) -> ObservationBatch:
    """The model inputs of ``episode`` at the step indices ``frames``."""
    frames = np.asarray(frames, dtype=np.int64)
    embedding = embedder.embed([episode.instruction]).float()
    state = episode_state(episode, frames, config)
    proprio = torch.from_numpy(np.asarray(normalizer.normalize_proprio(state), dtype=np.float32))
    return ObservationBatch(
        images=frame_images(episode, frames, config),
        instruction_embedding=embedding.expand(len(frames), -1).contiguous(),
        proprio=proprio,
    )

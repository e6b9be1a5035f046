"""Episode frames to the policy's ``ObservationBatch`` (images CHW uint8, instruction embedding, normalized state).

Shared by BC pretraining (which trains the encoders on these batches) and the
feature cache (which runs the frozen encoder on them once per frame). Images
recorded at another size than the model's are resized bilinearly.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from lwd_policy.contract import ObservationBatch, PolicyConfig
from lwd_policy.normalization import Normalizer
from lwd_policy.proprio import ProprioError, policy_state

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
        raise EpisodeError(f"episode {episode.episode_id} has no images from the model's cameras {missing}")
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
        raise EpisodeError(f"episode {episode.episode_id}: {error}") from error


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

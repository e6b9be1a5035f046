"""The frames BC pretraining draws its batches from, gathered once into tensors so that a batch is one index.

Each row is one frame of one episode, with everything a BC loss reads at that frame: the normalized policy state,
the normalized action chunk that starts there, the steps of that chunk to clone, the objects' recorded positions
(labels for the model's auxiliary loss) and the instruction. Building these per batch, episode by episode, cost
more than the flow step itself once perception was computed in advance. Images, by far the largest input, stay in
the episodes and are gathered only for a batch that runs the vision trunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from lwd_policy.contract import ObservationBatch, PolicyConfig, PolicyModel
from lwd_policy.normalization import Normalizer

from lwd_learner.dataset import Episode, action_chunks, operator_chunk_mask
from lwd_learner.observations import TextEmbedder, episode_state, frame_images


@dataclass(frozen=True)
class Frames:
    """Frames of one episode that a BC batch draws from: its index, the frame indices, and whether they are cloned
    (else they only teach perception)."""

    episode: int
    steps: np.ndarray
    cloned: bool = True


class Batch(NamedTuple):
    """One BC batch: observations (without images when ``perception`` holds the frames' ``perceive`` output); their
    normalized action chunks ``[B, H, D]``; the chunks' mask ``[B, H]`` of the steps to clone (the operator's, up to
    a hand-back or the episode's end: ``operator_chunk_mask``; none for frames that are not cloned); the task
    objects' recorded positions ``[B, N, 3]``, labels for the model's auxiliary loss (NaN where unknown); and the
    frames' ``perceive`` output when it was computed in advance."""

    observations: ObservationBatch
    actions: torch.Tensor
    mask: torch.Tensor
    positions: torch.Tensor
    perception: torch.Tensor | None


class FrameTable:
    """Every frame of ``parts`` as one row, ready to batch for ``policy_config`` under ``normalizer``."""

    def __init__(
        self,
        episodes: list[Episode],
        parts: list[Frames],
        policy_config: PolicyConfig,
        normalizer: Normalizer,
        embedder: TextEmbedder,
    ) -> None:
        if not parts:
            raise ValueError("a frame table needs at least one part")
        self.episodes = episodes
        self.policy_config = policy_config
        self.episode = np.concatenate([np.full(len(part.steps), part.episode, dtype=np.int64) for part in parts])
        self.frame = np.concatenate([np.asarray(part.steps, dtype=np.int64) for part in parts])
        horizon = policy_config.horizon
        states, chunks, masks, positions = [], [], [], []
        for part in parts:
            episode, steps = episodes[part.episode], np.asarray(part.steps, dtype=np.int64)
            states.append(episode_state(episode, steps, policy_config))
            chunks.append(action_chunks(episode, steps, horizon)[0])
            mask = operator_chunk_mask(episode, steps, horizon)
            masks.append(mask if part.cloned else np.zeros_like(mask))
            positions.append(object_positions(episode, steps))
        self.proprio = _float_tensor(normalizer.normalize_proprio(np.concatenate(states)))
        self.actions = _float_tensor(normalizer.normalize_action(np.concatenate(chunks)))
        self.mask = torch.from_numpy(np.concatenate(masks))
        objects = max(p.shape[1] for p in positions)
        self.positions = torch.from_numpy(
            np.concatenate(
                [np.pad(p, ((0, 0), (0, objects - p.shape[1]), (0, 0)), constant_values=np.nan) for p in positions]
            )
        )
        texts, instruction = np.unique([episodes[index].instruction for index in self.episode], return_inverse=True)
        self.embeddings = embedder.embed(texts.tolist()).float()
        self.instruction = torch.from_numpy(instruction.astype(np.int64))

    def __len__(self) -> int:
        return len(self.frame)

    def draw(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        """``batch_size`` rows drawn uniformly, with replacement, so every frame is equally likely."""
        return rng.integers(len(self), size=batch_size)

    def batch(self, rows: np.ndarray, perception: torch.Tensor | None = None) -> Batch:
        """The batch of ``rows``; with ``perception`` (``perceive``'s output for every row, in row order) its rows
        replace the images, which are then not gathered."""
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        observations = ObservationBatch(
            images={} if perception is not None else self.images(rows),
            instruction_embedding=self.embeddings[self.instruction[index]],
            proprio=self.proprio[index],
        )
        return Batch(
            observations=observations,
            actions=self.actions[index],
            mask=self.mask[index],
            positions=self.positions[index],
            perception=None if perception is None else perception[index],
        )

    def images(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """The configured cameras' images of ``rows`` (``frame_images``), in row order."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(self.episode[rows], kind="stable")
        grouped: dict[str, list[torch.Tensor]] = {camera: [] for camera in self.policy_config.cameras}
        ordered = rows[order]
        for episode in np.unique(self.episode[ordered]):
            frames = self.frame[ordered[self.episode[ordered] == episode]]
            for camera, image in frame_images(self.episodes[episode], frames, self.policy_config).items():
                grouped[camera].append(image)
        restore = torch.from_numpy(np.argsort(order))
        return {camera: torch.cat(images)[restore] for camera, images in grouped.items()}

    def perceive(self, model: PolicyModel, batch_size: int) -> torch.Tensor | None:
        """``model.perceive`` of every row ``[N, P]``, computed once for the flow steps, or None when the model does
        not separate perception or when it depends on a weight that still trains (then it must run on every
        step). Each batch is written into one tensor as it comes: keeping every batch's output to concatenate at the
        end grew the process by about 0.8 MB per batch, which exhausted 24 GB on the suite's 1,200 episodes."""
        keypoints: torch.Tensor | None = None
        for start in range(0, len(self), batch_size):
            stop = min(start + batch_size, len(self))
            output = model.perceive(self.images(np.arange(start, stop)))
            if output is None or output.requires_grad:
                return None
            if keypoints is None:
                keypoints = output.new_empty((len(self), *output.shape[1:]))
            keypoints[start:stop] = output
        return keypoints


def object_positions(episode: Episode, frames: np.ndarray) -> np.ndarray:
    """The task objects' recorded positions ``[B, N, 3]`` at ``frames`` (N = 0 for a bag without perception)."""
    if episode.object_poses is None:
        return np.zeros((len(frames), 0, 3), dtype=np.float32)
    return np.asarray(episode.object_poses[frames, :, :3], dtype=np.float32)


def _float_tensor(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))

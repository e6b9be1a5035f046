"""One robot observation (or a batch of them) → an action chunk in robot units.

``ChunkPredictor`` binds a loaded checkpoint to an instruction encoder and does
the preprocessing the model expects: HxWx3 uint8 images to ``[B,3,h,w]``
(resized when the camera's size differs from the config), cached instruction
embeddings, proprio normalization, and action un-normalization. Several
observations (e.g. N simulated robots in one process) share one forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from lwd_policy.checkpoint import PolicyCheckpoint
from lwd_policy.contract import ObservationBatch, ObservationError
from lwd_policy.language import InstructionEncoder
from lwd_policy.proprio import ProprioError, policy_state


@dataclass(frozen=True)
class PolicyObservation:
    """What the robot saw at one control step.

    ``stamp``: observation time [s, same clock as the runtime's ``now``]; ``qpos``: joint positions
    [robot units]; ``images``: ``{camera: uint8 HxWx3 RGB}``; ``instruction``: the task text;
    ``object_poses``: ``[N, 7]`` task-object poses from perception (read only by policies with object slots).
    """

    stamp: float
    qpos: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)
    instruction: str = ""
    object_poses: np.ndarray | None = None


class ChunkPredictor:
    """Runs a ``PolicyCheckpoint`` on observations: ``predict(observations, generator) -> [B, H, D]`` robot units."""

    def __init__(self, checkpoint: PolicyCheckpoint, encoder: InstructionEncoder) -> None:
        if encoder.dim != checkpoint.config.language_dim:
            raise ObservationError(
                f"instruction encoder gives {encoder.dim}-D embeddings, policy expects {checkpoint.config.language_dim}"
            )
        self.checkpoint = checkpoint
        self.encoder = encoder
        self.model = checkpoint.model.eval()
        self.config = checkpoint.config

    @property
    def version(self) -> str:
        """Version of the weights."""
        return self.checkpoint.version

    def blank_observation(self, instruction: str = "") -> PolicyObservation:
        """Black camera frames at the dataset's mean joint and object positions: a probe for checking weights."""
        config = self.config
        mean_state = self.checkpoint.normalizer.proprio.shift
        slots = mean_state[config.proprio_dim :].reshape(config.object_slots, 3)
        return PolicyObservation(
            stamp=0.0,
            qpos=mean_state[: config.proprio_dim].copy(),
            images={c: np.zeros((config.image_height, config.image_width, 3), np.uint8) for c in config.cameras},
            instruction=instruction,
            object_poses=np.concatenate([slots, np.tile([1.0, 0.0, 0.0, 0.0], (config.object_slots, 1))], axis=1),
        )

    def _image_tensor(self, camera: str, observations: list[PolicyObservation]) -> torch.Tensor:
        frames = []
        for observation in observations:
            if camera not in observation.images:
                raise ObservationError(f"observation lacks camera {camera!r}")
            frame = np.asarray(observation.images[camera])
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise ObservationError(f"camera {camera!r} must be uint8 HxWx3, got {frame.dtype} {frame.shape}")
            frames.append(torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1))
        stacked = torch.stack(frames)
        size = (self.config.image_height, self.config.image_width)
        if tuple(stacked.shape[2:]) != size:
            resized = F.interpolate(stacked.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
            stacked = resized.round().clamp(0, 255).to(torch.uint8)
        return stacked

    def batch(self, observations: list[PolicyObservation]) -> ObservationBatch:
        """Model inputs for ``observations``."""
        if not observations:
            raise ObservationError("predict() needs at least one observation")
        states = []
        for observation in observations:
            qpos = np.asarray(observation.qpos, dtype=np.float32).reshape(-1)
            if qpos.shape[0] != self.config.proprio_dim:
                raise ObservationError(f"qpos has {qpos.shape[0]} values, policy expects {self.config.proprio_dim}")
            try:
                states.append(policy_state(qpos, observation.object_poses, self.config.object_slots))
            except ProprioError as error:
                raise ObservationError(str(error)) from error
        proprio = self.checkpoint.normalizer.normalize_proprio(torch.from_numpy(np.stack(states)))
        return ObservationBatch(
            images={camera: self._image_tensor(camera, observations) for camera in self.config.cameras},
            instruction_embedding=self.encoder.embed([o.instruction for o in observations]),
            proprio=proprio,
        )

    def predict(
        self,
        observations: list[PolicyObservation],
        generator: torch.Generator | None = None,
        noise_scale: float = 1.0,
    ) -> np.ndarray:
        """Action chunks ``[B, H, D]`` (float64, robot units) for ``observations``.

        The flow starts from ``noise_scale`` × N(0, I): 1 samples the learned action distribution,
        0 always starts from its centre and makes the policy deterministic.
        """
        if not 0.0 <= noise_scale <= 1.0:
            raise ValueError(f"noise_scale must be in [0, 1], got {noise_scale!r}")
        batch = self.batch(observations)
        config = self.config
        shape = (batch.batch_size, config.horizon, config.action_dim)
        with torch.inference_mode():
            noise = noise_scale * torch.randn(shape, generator=generator)
            normalized = self.model.sample(self.model.encode(batch), noise=noise)
            actions = self.checkpoint.normalizer.unnormalize_action(normalized)
        return actions.double().numpy()

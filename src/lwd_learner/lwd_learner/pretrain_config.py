"""`PretrainConfig`: the settings of BC pretraining (``lwd train bc``), importable without torch."""

from __future__ import annotations

from dataclasses import dataclass

PERCEPTION_FRAMES = ("cloned", "recorded")
"""Which frames the auxiliary perception loss learns from (``PretrainConfig.perception_frames``)."""


@dataclass
class PretrainConfig:
    """BC pretraining settings. ``auxiliary_weight`` scales the model's auxiliary loss, if it has one
    (``PolicyModel.encode_for_training``; the built-in VLA's object head), against the flow-matching loss.

    ``perception_steps`` > 0 trains perception first: that many steps on the auxiliary loss alone (the built-in
    VLA: vision trunk and object head learn where the objects are), after which the parameters it trained are
    frozen and the ``steps`` of flow matching train the rest on what perception sees. Frozen, the vision trunk
    runs once per cloned frame before the flow steps (``PolicyModel.perceive``), not on every step, so a flow step
    trains only the fusion and the action expert (bench/bc_step.py). The perception steps have an
    optimizer of their own, at ``perception_lr``: regressing positions through the spatial softmax learns slowly
    at the flow's ``lr``.

    ``perception_frames`` says which frames the auxiliary loss learns from: ``"cloned"``, the frames BC clones;
    ``"recorded"``, every frame recorded with object positions, cloned or not (failed demonstrations such as
    replays, ``lwd_sim.replay``, whose arms say nothing about where the objects are). Frames that are not cloned
    join the batches of every step that trains perception, with nothing to clone.

    ``keypoint_weight`` scales the keypoint loss that a camera calibration adds to the perception steps
    (``pretrain_bc(calibration=...)``): the model's image keypoints learn where the objects appear. Without it the
    object head's loss sat on a plateau for 1,000-1,750 of the 3,000 steps, and how long decided the base.
    """

    steps: int = 2000
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    seed: int = 0
    with_interventions: bool = False
    log_every: int = 50
    auxiliary_weight: float = 1.0
    perception_steps: int = 0
    perception_lr: float = 3e-4
    perception_frames: str = "cloned"
    keypoint_weight: float = 10.0

    def __post_init__(self) -> None:
        if self.perception_frames not in PERCEPTION_FRAMES:
            raise ValueError(f"perception_frames must be one of {PERCEPTION_FRAMES}, got {self.perception_frames!r}")
        if not 0 <= self.keypoint_weight < float("inf"):
            raise ValueError(f"keypoint_weight must be a finite number >= 0, got {self.keypoint_weight!r}")

"""`PretrainConfig`: the settings of BC pretraining (``lwd train bc``), importable without torch."""

from __future__ import annotations

from dataclasses import dataclass

PERCEPTION_FRAMES = ("cloned", "recorded")
"""Which frames the auxiliary perception loss learns from (``PretrainConfig.perception_frames``)."""

PERCEPTION_WINDOW = 250
"""The perception steps whose mean loss ``PretrainConfig.perception_target_loss`` is compared with."""


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

    ``perception_target_loss`` guards against perception that stalls: with it, perception goes on past
    ``perception_steps`` while the auxiliary loss, averaged over the last ``PERCEPTION_WINDOW`` steps, is above the
    target, up to ``perception_max_steps`` in all. Frozen afterwards, a trunk that failed to find the objects cannot
    be repaired by anything trained on its features, and whether it finds them in time varies with the seed: one
    BC seed in seven of the test-split experiment still stood at a loss of 0.08 at 3,000 steps where the others
    were at 0.011-0.040, and its policy gained nothing from the loop (BENCHMARKS.md, "A guard for stalled
    perception").
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
    perception_target_loss: float | None = None
    perception_max_steps: int = 0

    def __post_init__(self) -> None:
        if self.perception_target_loss is not None:
            if self.perception_target_loss <= 0:
                raise ValueError(f"perception_target_loss must be > 0, got {self.perception_target_loss}")
            if not 0 < self.perception_steps <= self.perception_max_steps:
                raise ValueError(
                    "perception_target_loss needs 0 < perception_steps <= perception_max_steps, got "
                    f"{self.perception_steps} and {self.perception_max_steps}"
                )
        if self.perception_frames not in PERCEPTION_FRAMES:
            raise ValueError(f"perception_frames must be one of {PERCEPTION_FRAMES}, got {self.perception_frames!r}")

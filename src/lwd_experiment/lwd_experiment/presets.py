"""Sizes of the demo: ``quick`` for CI, ``default`` for a laptop, ``full`` for the benchmark."""

from __future__ import annotations

from dataclasses import dataclass, replace

from lwd_policy.config import VLAConfig

INPUTS = ("pixels", "privileged")
"""What a demo's policy may read: see ``DemoPreset.inputs``."""


@dataclass(frozen=True)
class DemoPreset:
    """Every knob of one demo run; all arms and rounds of a run share the same seeds and budgets.

    ``inputs``: what the policy reads besides the instruction and the joints, named in every report:
    ``pixels`` (the camera; an object head learns the ``task_objects`` positions from it, with the
    positions recorded in the demonstration bags as training labels only, ``VLAConfig.perceived_objects``)
    or ``privileged`` (the camera and the true positions from the simulator's perception topic, ground
    truth no real robot has, ``VLAConfig.object_slots``).

    Seeds come from :mod:`lwd_experiment.seed_splits`: demonstrations and fleet episodes from their
    training splits, the per-round evaluations (``eval_episodes_per_task``) from the validation split, the
    base and final evaluations (``final_eval_episodes_per_task``) from the test split. The final policy is
    also evaluated on the first ``held_out_instruction_episodes_per_task`` of those test seeds with
    instructions no episode was recorded with (``lwd_sim.tasks``, held-out paraphrases).
    ``fleet_noise_scale``: the robots' policy samples from ``fleet_noise_scale`` × N(0, I) in fleet (deployment)
    episodes, so the fleet explores around the deterministic policy; evaluation always samples with noise 0.
    It stays 0 (no exploration, as before) until a value is chosen by measuring the settings on validation
    seeds (issue 19). Exploring costs fleet successes and may or may not pay back in learning: the built-in
    VLA sampling with full noise succeeded in 0/20 episodes where it succeeded in 14/20 deterministically
    (BENCHMARKS.md, "Sampling noise"); no value in between has been measured.
    ``perception_steps``: from pixels (ignored with privileged inputs), BC first trains the object head and the
    vision trunk alone for that many steps and then freezes them (``PretrainConfig.perception_steps``); 0 trains
    them jointly with the policy.
    """

    name: str
    robots: int = 2
    tasks: tuple[str, ...] = ("transfer_cube", "insertion")
    max_steps: int = 300
    inputs: str = "privileged"
    task_objects: int = 2
    demos_per_task: int = 150
    bc_steps: int = 6000
    bc_batch_size: int = 32
    rounds: int = 6
    episodes_per_round: int = 16
    updates_per_round: int = 250
    trainer_batch_size: int = 64
    eval_episodes_per_task: int = 20
    final_eval_episodes_per_task: int = 100
    held_out_instruction_episodes_per_task: int = 20
    fleet_noise_scale: float = 0.0
    perception_steps: int = 0

    def __post_init__(self) -> None:
        if self.inputs not in INPUTS:
            raise ValueError(f"unknown policy inputs {self.inputs!r}; valid inputs are {list(INPUTS)}")

    def vla_config(self) -> VLAConfig:
        """The VLA architecture this preset trains."""
        if self.inputs == "pixels":
            return VLAConfig(perceived_objects=self.task_objects)
        return VLAConfig(object_slots=self.task_objects)


PRESETS = {
    "quick": DemoPreset(
        name="quick",
        tasks=("transfer_cube",),
        max_steps=200,
        demos_per_task=6,
        bc_steps=60,
        bc_batch_size=16,
        rounds=1,
        episodes_per_round=4,
        updates_per_round=10,
        trainer_batch_size=32,
        eval_episodes_per_task=2,
        final_eval_episodes_per_task=2,
        held_out_instruction_episodes_per_task=2,
    ),
    "default": DemoPreset(name="default"),
    "full": DemoPreset(
        name="full",
        robots=2,
        demos_per_task=300,
        bc_steps=12000,
        rounds=8,
        episodes_per_round=32,
        updates_per_round=500,
        eval_episodes_per_task=50,
        final_eval_episodes_per_task=100,
        held_out_instruction_episodes_per_task=100,
    ),
}


def preset(name: str, **overrides: object) -> DemoPreset:
    """A named preset with field overrides; unknown names list the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown demo preset {name!r}; valid presets are {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)

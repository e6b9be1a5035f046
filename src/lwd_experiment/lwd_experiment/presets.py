"""Sizes of the demo: ``quick`` for CI, ``default`` for a laptop, ``full`` for the benchmark, ``suite``: all tasks."""

from __future__ import annotations

from dataclasses import dataclass, replace

from lwd_policy.config import VLAConfig
from lwd_sim.tasks import SHORT_HORIZON, TASKS

INPUTS = ("pixels", "privileged")
"""What a demo's policy may read: see ``DemoPreset.inputs``."""


@dataclass(frozen=True)
class DemoPreset:
    """Every knob of one demo run; all arms and rounds of a run share the same seeds and budgets.

    ``inputs``: what the policy reads besides the instruction and the joints, named in every report:
    ``pixels`` (the camera; an object head learns the ``task_objects`` positions from it, with the
    positions recorded in the demonstration bags as training labels only, ``VLAConfig.perceived_objects``)
    or ``privileged`` (the camera and the true positions from the simulator's perception topic, ground
    truth no real robot has, ``VLAConfig.object_slots``). Every preset reads pixels but ``quick``, CI's one-minute
    loop, which has no time to train perception and so reads privileged positions.

    Seeds come from :mod:`lwd_experiment.seed_splits`: demonstrations and fleet episodes from their
    training splits, the per-round evaluations (``eval_episodes_per_task``) from the validation split, the
    base and final evaluations (``final_eval_episodes_per_task``) from the test split. The final policy is
    also evaluated on the first ``held_out_instruction_episodes_per_task`` of those test seeds with
    instructions no episode was recorded with (``lwd_sim.tasks``, held-out paraphrases).
    ``fleet_noise_scale``: the robots' policy samples from ``fleet_noise_scale`` × N(0, I) in fleet (deployment)
    episodes, so the fleet explores around the deterministic policy; evaluation always samples with noise 0.
    0.2, measured against 0 in the whole pixel loop on validation seeds (BENCHMARKS.md, "Fleet exploration
    noise"): the final policies tied (133 and 132 of 200), and with 0.2 the versions in between did better (150
    against 138 of 200 over rounds 1-5) and the fleet succeeded more often with fewer takeovers (78 against 68 of
    96 episodes, 33 against 49 takeovers). Full noise (1) is far too much: 0/20 where deterministic sampling
    solved 14/20 (BENCHMARKS.md, "Sampling noise"). ``quick``, CI's loop, deploys deterministically.
    ``perception_steps``: from pixels (ignored with privileged inputs), BC first trains the object head and the
    vision trunk alone for that many steps, at ``perception_lr``, and then freezes them
    (``PretrainConfig.perception_steps``); 0 trains them jointly with the policy.
    ``replays_per_task``: from pixels (ignored with privileged inputs), that many replays per task are recorded after
    the demonstrations (``lwd_sim.replay``: a demonstration's commands sent on another seed's scene, so the arms
    say nothing about where the objects are), and the object head learns from every recorded frame
    (``PretrainConfig.perception_frames = "recorded"``); replays fail and are never cloned.
    ``pixel_bc_steps``: from pixels with perception first, BC's flow steps after it (in place of ``bc_steps``,
    :meth:`bc_flow_steps`). With the trunk frozen each frame's keypoints are computed once, so a flow step trains only
    the fusion and the action expert and many more of them fit the budget.
    The pixel settings (as many replays as demonstrations, perception at 3e-3, 20,000 flow steps) were
    chosen on validation seeds with ``bench/perception_probe.py``, ``bench/bc_ablation.py`` and
    ``bench/policy_eval.py`` (BENCHMARKS.md, "Learning from pixels"). The perception steps also learn where the
    objects appear in the image (the cameras' calibration, ``DemoLoop.pretrain``), which ended the plateau that
    made 3,000 steps necessary: 2,000 with it gave better bases for BC seeds 5 and 0 on validation seeds than
    3,000 without (BENCHMARKS.md, "Keypoint labels from the camera calibration").

    ``max_steps`` is the step budget of an episode of a short task; a longer task gets proportionally more
    (:meth:`max_steps_for`). ``task_objects`` must cover the task with the most objects; a task with fewer
    leaves the remaining slots zero (privileged) or unlabelled (pixels).
    """

    name: str
    robots: int = 2
    tasks: tuple[str, ...] = ("transfer_cube", "insertion")
    max_steps: int = 300
    inputs: str = "pixels"
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
    fleet_noise_scale: float = 0.2
    perception_steps: int = 2000
    perception_lr: float = 3e-3
    replays_per_task: int = 150
    pixel_bc_steps: int = 20000

    def __post_init__(self) -> None:
        if self.inputs not in INPUTS:
            raise ValueError(f"unknown policy inputs {self.inputs!r}; valid inputs are {list(INPUTS)}")
        unknown = [task for task in self.tasks if task not in TASKS]
        if unknown:
            raise ValueError(f"unknown tasks {unknown}; valid tasks are {sorted(TASKS)}")
        most = max((len(TASKS[task].objects) for task in self.tasks), default=0)
        if self.task_objects < most:
            raise ValueError(f"task_objects {self.task_objects} < the {most} objects of the preset's largest task")

    def max_steps_for(self, task: str) -> int:
        """The control steps an episode of ``task`` may run: ``max_steps`` scaled by the task's demonstration
        horizon over a short task's (``TaskSpec.horizon`` / ``SHORT_HORIZON``), so the long ``tidy_cubes``
        (horizon 2000, about 1,100 operator steps) gets five times ``max_steps`` instead of being cut a quarter
        of the way through, and a short task keeps ``max_steps``."""
        return self.max_steps * TASKS[task].horizon // SHORT_HORIZON

    def bc_flow_steps(self) -> int:
        """BC's flow-matching steps: ``pixel_bc_steps`` after perception first from pixels, else ``bc_steps``."""
        return self.pixel_bc_steps if self.inputs == "pixels" and self.perception_steps else self.bc_steps

    def vla_config(self) -> VLAConfig:
        """The VLA architecture this preset trains."""
        if self.inputs == "pixels":
            return VLAConfig(perceived_objects=self.task_objects)
        return VLAConfig(object_slots=self.task_objects)


SUITE = DemoPreset(
    name="suite",
    tasks=tuple(TASKS),
    task_objects=max(len(spec.objects) for spec in TASKS.values()),
    demos_per_task=100,
    replays_per_task=100,
    bc_steps=12000,
    rounds=4,
    episodes_per_round=24,
    updates_per_round=500,
    eval_episodes_per_task=10,
    final_eval_episodes_per_task=50,
    held_out_instruction_episodes_per_task=10,
)
"""Every task of :data:`lwd_sim.tasks.TASKS` (issue 20: the semantic ``pick_colour``, the long ``tidy_cubes``), sized
for ``bench/learning.py --preset suite`` (four arms, one run) in one evening on 2 cores.

Episodes of the short tasks run up to 300 steps as in ``default``, ``tidy_cubes`` up to 1,500
(:meth:`DemoPreset.max_steps_for`); six object slots fit ``tidy_cubes`` (five cubes and the bin). The sizes
trade the number of seeds for the tasks: 100 demonstrations per task (600 in all, two thirds of ``default``'s
per task), 12,000 BC steps as in ``full`` for six tasks, 4 rounds of 24 fleet episodes (4 per task) and 500
updates, and 50 final seeds per task (300 episodes pooled; ±14 points per task at 50%), 10 per task between
rounds and with held-out instructions. An evaluation seed costs up to 3,000 control steps (five 300-step
tasks and one of 1,500) against 600 in ``default``, so evaluations dominate.

Estimate, not a measurement (from ``default``'s rates on the idle VM: 225 recorded operator steps/s and 300
policy steps/s over 2 robots, 10 BC steps/s, 6.4 trainer updates/s): demonstrations 13 min and the replays as
long again, BC about 16 min (from ``default``'s pixel BC: 3,000 perception steps at 7/s, 20,000 flow steps at
57/s), per training arm 34 min (base 8, rounds 24, held-out 2), frozen BC 10 min: about 2 h 40 min for the four
arms on an idle VM, an evening on a shared one. The scaled-down run of ``test/system/test_demo_suite.py`` ran end
to end.
"""

PRESETS = {
    "quick": DemoPreset(
        name="quick",
        inputs="privileged",
        fleet_noise_scale=0.0,
        tasks=("transfer_cube",),
        max_steps=200,
        demos_per_task=6,
        replays_per_task=0,
        perception_steps=0,
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
        replays_per_task=300,
        bc_steps=12000,
        rounds=8,
        episodes_per_round=32,
        updates_per_round=500,
        eval_episodes_per_task=50,
        final_eval_episodes_per_task=100,
        held_out_instruction_episodes_per_task=100,
    ),
    "suite": SUITE,
}


def preset(name: str, **overrides: object) -> DemoPreset:
    """A named preset with field overrides; unknown names list the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown demo preset {name!r}; valid presets are {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)

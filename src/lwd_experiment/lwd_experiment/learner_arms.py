"""The learners compared on the same fleet budget: LWD and the baselines of docs/method.md, "Baselines"."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LearnerArm:
    """How the trainer learns from fleet data in one arm of the experiment.

    ``agent`` is the ``lwd train serve --agent`` JSON (AgentConfig overrides), ``mix`` its replay
    sampling mix and ``max_oversample`` the mix's bound (``--max-oversample``; None: the trainer's default);
    ``clone_mix`` the mix of the batch its cloning loss learns from (``--clone-mix``; empty: ``mix``'s batch);
    an arm that does not ``train`` keeps deploying the pretrained policy.
    """

    name: str
    description: str
    agent: str = "{}"
    mix: str = "demo=0.25,autonomous=0.5,intervention=0.25"
    max_oversample: float | None = None
    clone_mix: str = ""
    train: bool = True


CLONE_MIX = "demo=0.5,autonomous=0.0,intervention=0.5"
"""What LWD's base flow clones from: a batch of its own at HG-DAgger's shares. Cloned from the critic's batch (half
autonomous steps, never cloned; from pixels, demonstrations half replays, never cloned) the base flow unlearnt
insertion (0 of 200 validation seeds after 750 updates, from 29) and pulled the actor down with it; with this batch
offline LWD reached 52% against 26% (BENCHMARKS.md, "Why insertion came and went")."""

LEARNER_ARMS = {
    arm.name: arm
    for arm in (
        LearnerArm("lwd", "LWD: DIVL value distribution + QAM actor", clone_mix=CLONE_MIX),
        LearnerArm(
            "lwd-expectile",
            "LWD with a scalar IQL expectile value in place of DIVL (ablation)",
            agent='{"value": "expectile"}',
            clone_mix=CLONE_MIX,
        ),
        LearnerArm(
            "hg-dagger",
            "HG-DAgger: BC on demonstrations plus intervention segments",
            agent='{"actor": "bc"}',
            mix="demo=0.5,autonomous=0.0,intervention=0.5",
        ),
        LearnerArm("frozen-bc", "the pretrained BC policy, never updated", train=False),
    )
}

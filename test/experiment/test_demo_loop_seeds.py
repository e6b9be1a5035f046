"""Which seeds, instructions and training seeds each stage of a demo run uses, with the robots and ``lwd``
commands replaced by recorders (no processes, no training): the seed splits are routed in ``DemoLoop``."""

from __future__ import annotations

from pathlib import Path

import pytest
from lwd_experiment.demo_loop import DemoError, DemoLoop, Progress
from lwd_experiment.learner_arms import LEARNER_ARMS
from lwd_experiment.presets import preset
from lwd_experiment.seed_splits import SplitError, split_seeds
from lwd_experiment.sim_robot import EpisodeJob
from lwd_interfaces.camera_projection import CameraCalibration

from .conftest import QUICK_TWO_ROUNDS


@pytest.fixture
def loop_factory(recorded_loops, tmp_path):
    """A DemoLoop on the quick preset (2 rounds) whose robots are a RecordingFleet and whose ``lwd`` commands
    are only recorded; returns the factory, the fleet and the recorded command lines."""
    fleet, commands = recorded_loops
    chosen = QUICK_TWO_ROUNDS

    def make(**kwargs) -> DemoLoop:
        return DemoLoop(chosen, tmp_path / "run", progress=Progress(emit=lambda line: None), **kwargs)

    return make, fleet, commands


def seeds_of(jobs: list[EpisodeJob]) -> list[int]:
    return [job.seed for job in jobs]


def test_deployments_take_fleet_seeds_and_evaluations_the_validation_split_between_and_the_reported_one_at_the_ends(
    loop_factory,
):
    make, fleet, commands = loop_factory
    loop = make(training_seed=5, split="validation")
    summary = loop.deploy()
    base, deploy_1, eval_1, deploy_2, final, held_out = fleet.batches
    assert seeds_of(base) == seeds_of(final) == list(split_seeds("validation", 3))
    assert seeds_of(eval_1) == list(split_seeds("validation", 1)), "rounds in between: validation seeds"
    assert seeds_of(deploy_1) + seeds_of(deploy_2) == list(split_seeds("fleet", 8)), "fleet seeds never repeat"
    assert {job.mode for job in deploy_1 + deploy_2} == {"deployment"}
    assert {job.instructions for batch in (base, eval_1, final) for job in batch} == {"trained"}
    assert seeds_of(held_out) == list(split_seeds("validation", 2))
    assert {(job.mode, job.instructions) for job in held_out} == {("evaluation", "held_out")}
    assert [r.eval_split for r in loop.rounds] == ["validation"] * 3
    assert loop.rounds[-1].held_out_instruction_outcomes == {"transfer_cube": {900_000: True, 900_001: False}}
    assert not loop.rounds[0].held_out_instruction_outcomes, "only the final policy is evaluated so"
    trainer_runs = [arguments for arguments in commands if arguments[:2] == ["train", "serve"]]
    assert len(trainer_runs) == 2
    assert all(arguments[arguments.index("--seed") + 1] == "5" for arguments in trainer_runs)
    text = Path(summary).read_text()
    assert "| held-out instructions |" in text and "50% [" in text
    assert "seeds solved only with the trained instructions vs only with the held-out ones: 0 vs 0" in text


def test_the_reported_evaluations_take_the_test_split_which_a_caller_outside_its_entry_points_cannot_reach(
    loop_factory,
):
    make, fleet, _ = loop_factory
    loop = make()
    assert loop.split == "test"
    with pytest.raises(SplitError, match="test split is reserved"):
        loop.deploy()
    assert fleet.batches == [], "refused before any robot ran an episode"
    with pytest.raises(SplitError, match="test split is reserved"):
        loop.evaluate(per_task=1, split="test")
    assert fleet.batches == []


def test_pretraining_is_seeded_by_the_training_seed(loop_factory):
    make, _, commands = loop_factory
    loop = make(training_seed=3)
    loop.work_dir.mkdir()  # the demonstrations' folder
    loop.pretrain()
    bc, publish = commands
    assert bc[:2] == ["train", "bc"] and bc[bc.index("--seed") + 1] == "3"
    assert publish[:2] == ["train", "publish"]


@pytest.mark.parametrize(("inputs", "passed", "flow_steps"), [("pixels", "7", "90"), ("privileged", "0", "60")])
def test_perception_steps_reach_bc_only_from_pixels(loop_factory, tmp_path, inputs, passed, flow_steps):
    """A privileged policy has no object head to train first, so its BC gets no perception steps, and the flow
    steps of ``bc_steps``; from pixels the flow steps after perception first are ``pixel_bc_steps``."""
    _, _, commands = loop_factory
    chosen = preset("quick", inputs=inputs, perception_steps=7, perception_lr=0.002, bc_steps=60, pixel_bc_steps=90)
    loop = DemoLoop(chosen, tmp_path / "run", progress=Progress(emit=lambda line: None))
    loop.work_dir.mkdir()
    loop.pretrain()
    bc = commands[0]
    assert bc[bc.index("--perception-steps") + 1] == passed
    assert bc[bc.index("--perception-lr") + 1] == "0.002"
    assert bc[bc.index("--steps") + 1] == flow_steps
    calibrated = "--camera-calibration" in bc
    assert calibrated == (inputs == "pixels"), "the cameras' calibration labels the perception steps"
    if calibrated:
        calibration = CameraCalibration.read(Path(bc[bc.index("--camera-calibration") + 1]))
        assert set(calibration.cameras) == set(chosen.vla_config().cameras)


@pytest.mark.parametrize(("inputs", "frames"), [("pixels", "recorded"), ("privileged", "cloned")])
def test_replays_are_recorded_on_new_demonstration_scenes_and_teach_perception_only_from_pixels(
    loop_factory, tmp_path, inputs, frames
):
    """From pixels, each replay sends a recorded demonstration's seed to a scene no demonstration used, and BC's
    object head learns from every recorded frame; a privileged policy has no head, so it gets neither."""
    _, fleet, commands = loop_factory
    chosen = preset("quick", inputs=inputs, replays_per_task=3)
    loop = DemoLoop(chosen, tmp_path / "run", progress=Progress(emit=lambda line: None))
    loop.record_demonstrations()
    demonstrations, *replays = fleet.batches
    assert {job.mode for job in demonstrations} == {"demonstration"}
    if inputs == "pixels":
        (replays,) = replays
        assert {job.mode for job in replays} == {"replay"}
        assert [job.replay_of for job in replays] == seeds_of(demonstrations)[:3]
        assert seeds_of(replays) == list(split_seeds("demonstration", 3, offset=chosen.demos_per_task))
    else:
        assert replays == []
    loop.work_dir.mkdir(exist_ok=True)  # the demonstrations' folder
    loop.pretrain()
    bc = commands[0]
    assert bc[bc.index("--perception-frames") + 1] == frames


def test_a_base_evaluation_given_is_reused_without_running_it_and_must_be_on_the_runs_seeds(loop_factory):
    make, fleet, _ = loop_factory
    first = make(split="validation")
    first.deploy()
    base = first.rounds[0]
    fleet.batches.clear()
    second = make(split="validation")
    second.deploy(base=base)
    assert [batch[0].mode for batch in fleet.batches] == ["deployment", "evaluation"] * 2 + ["evaluation"], (
        "no base evaluation ran"
    )
    assert second.rounds[0] == base and len(second.rounds) == 3
    frozen = make(split="validation", arm=LEARNER_ARMS["frozen-bc"])
    frozen.deploy(base=base)
    assert frozen.rounds[0].held_out_instruction_outcomes, "the frozen base's final is its own copy of the base"
    assert not base.held_out_instruction_outcomes, "the evaluation given is left as it was"
    with pytest.raises(DemoError, match="not on this run's 3 validation seeds"):
        make(split="validation").deploy(base=first.rounds[1])


def test_pretraining_and_every_trainer_round_share_the_learner_cache_given(loop_factory, tmp_path):
    make, _, commands = loop_factory
    loop = make(split="validation", cache_dir=tmp_path / "shared")
    loop.work_dir.mkdir()
    loop.pretrain()
    loop.deploy()
    learners = [arguments for arguments in commands if arguments[1] in ("bc", "serve")]
    assert [arguments[1] for arguments in learners] == ["bc", "serve", "serve"]
    assert {arguments[arguments.index("--cache-dir") + 1] for arguments in learners} == {str(tmp_path / "shared")}

"""A learner arm of ``bench/learning.py`` resumes: a finished arm is read back, never run twice or under other
settings, and an unfinished one runs again from its base."""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest
from lwd_experiment.arm_run import ArmRun
from lwd_experiment.learner_arms import LEARNER_ARMS

from .conftest import QUICK_TWO_ROUNDS


@pytest.fixture
def base(tmp_path):
    """A prepared base folder (its store, policy and keys are only copied here), one episode in its store."""
    folder = tmp_path / "base"
    for part in ("fleet", "pretrained", "keys"):
        (folder / part).mkdir(parents=True)
    (folder / "fleet" / "episodes").mkdir()
    (folder / "fleet" / "episodes" / "demo.mcap").write_bytes(b"recorded")
    return folder


def test_arms_share_the_base_stores_files_and_a_rename_in_one_leaves_the_other(recorded_loops, base, tmp_path):
    arm = ArmRun(QUICK_TWO_ROUNDS, LEARNER_ARMS["lwd"], 0, "validation")
    arm.run_from(base, tmp_path / "run-0", None)
    episode = tmp_path / "run-0" / "lwd" / "fleet" / "episodes" / "demo.mcap"
    assert episode.stat().st_ino == (base / "fleet" / "episodes" / "demo.mcap").stat().st_ino
    replacement = episode.with_suffix(".tmp")
    replacement.write_bytes(b"replaced")
    replacement.replace(episode)
    assert (base / "fleet" / "episodes" / "demo.mcap").read_bytes() == b"recorded"


def test_a_finished_arm_is_read_back_and_an_unfinished_one_runs_again(recorded_loops, base, tmp_path):
    fleet, commands = recorded_loops
    run_dir = tmp_path / "run-0"
    arm = ArmRun(QUICK_TWO_ROUNDS, LEARNER_ARMS["lwd"], 0, "validation")
    assert arm.finished(run_dir) is None
    rounds = arm.run_from(base, run_dir, None)
    ran = len(fleet.batches)
    assert ran == 6 and len(rounds) == 3
    assert all(arguments[arguments.index("--cache-dir") + 1] == str(run_dir / "cache") for arguments in commands)
    assert arm.finished(run_dir) == rounds, "read back as it was measured, seeds and all"
    assert len(fleet.batches) == ran, "a finished arm runs nothing"
    (run_dir / "lwd" / "report" / "results.json").unlink()
    assert arm.finished(run_dir) is None
    assert len(arm.run_from(base, run_dir, rounds[0])) == 3
    assert len(fleet.batches) == ran + 5, "run again, on the base evaluation given"


def test_a_finished_arm_with_other_settings_is_refused(recorded_loops, base, tmp_path):
    arm = ArmRun(QUICK_TWO_ROUNDS, LEARNER_ARMS["lwd"], 0, "validation")
    arm.run_from(base, tmp_path, None)
    bounded = replace(arm, learner=replace(LEARNER_ARMS["lwd"], max_oversample=4.0))
    with pytest.raises(ValueError, match="finished with other settings"):
        bounded.finished(tmp_path)
    with pytest.raises(ValueError, match="finished with other settings"):
        replace(arm, run=1).finished(tmp_path)


def learning_bench():
    """``bench/learning.py`` as a module."""
    spec = importlib.util.spec_from_file_location("learning", Path(__file__).parents[2] / "bench" / "learning.py")
    learning = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(learning)
    return learning


def test_an_unpublished_base_keeps_a_committed_checkpoint_and_retrains_an_uncommitted_one(recorded_loops, tmp_path):
    _, commands = recorded_loops
    learning = learning_bench()
    demonstrations = tmp_path / "demonstrations"
    for part in ("fleet", "keys"):
        (demonstrations / part).mkdir(parents=True)
    base = tmp_path / "work" / "run-3" / "base"
    (base / "pretrained").mkdir(parents=True)
    (base / "pretrained" / "manifest.json").write_text("{}")
    (base / "vla_config.json").write_text("{}")
    assert learning.base_policy(QUICK_TWO_ROUNDS, demonstrations, None, tmp_path / "work", 3) == base
    assert [arguments[:2] for arguments in commands] == [["train", "publish"]], "published, not trained again"
    assert (base / "pretrained" / "manifest.json").is_file() and not (base / "vla_config.json").exists()
    (base / "pretrained" / "manifest.json").unlink()
    commands.clear()
    learning.base_policy(QUICK_TWO_ROUNDS, demonstrations, None, tmp_path / "work", 3)
    assert [arguments[:2] for arguments in commands] == [["train", "bc"], ["train", "publish"]]
    bc = commands[0]
    assert bc[bc.index("--seed") + 1] == "3"


def test_learning_runs_are_distinct_non_negative_indices():
    learning = learning_bench()
    assert learning.run_indices("0,3,4") == [0, 3, 4]
    for text in ("1,1", "-1", "a", ","):
        with pytest.raises(argparse.ArgumentTypeError, match="run indices"):
            learning.run_indices(text)

"""`lwd demo --preset quick` runs the whole loop for real: demos → BC → deploy → record → upload → train → redeploy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lwd_experiment.demo_loop import DemoLoop, Progress
from lwd_experiment.presets import preset
from lwd_experiment.seed_splits import SPLITS, SplitError, split_seeds
from lwd_interfaces.manifest import verify_folder
from lwd_logger.bag_reader import BagReader

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, str]:
    work_dir = tmp_path_factory.mktemp("demo") / "run"
    result = subprocess.run(
        [sys.executable, "-m", "lwd.cli", "demo", "--preset", "quick", "--work-dir", str(work_dir)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work_dir, result.stdout


def committed_episodes(work_dir: Path) -> list[Path]:
    return sorted(path.parent for path in (work_dir / "fleet" / "episodes").glob("*/*/*/manifest.json"))


def test_report_has_every_round_with_intervals_plots_and_videos(demo_run):
    work_dir, stdout = demo_run
    report = work_dir / "report"
    rounds = json.loads((report / "results.json").read_text())
    assert [r["round_index"] for r in rounds] == [0, 1]
    assert rounds[0]["policy_version"] == "v000000-bc"
    assert rounds[1]["policy_version"] == "v000010", "the trained version must be what the fleet evaluated"
    assert rounds[1]["fleet_episodes"] == 4
    assert rounds[0]["turnaround_s"] == {}, "the base policy trained on no fleet episode"
    trainer_log = work_dir / "logs" / "trainer-round-1.log"
    assert set(rounds[1]["turnaround_s"]) <= {"sim_00", "sim_01"} and all(
        0 < seconds < 600 for seconds in rounds[1]["turnaround_s"].values()
    ), rounds[1]["turnaround_s"]
    assert rounds[1]["turnaround_s"], "a robot ran the trained version"
    test_seeds = [str(seed) for seed in SPLITS["test"][:2]]
    for reported in (rounds[0], rounds[1]):
        assert reported["eval_split"] == "test", "the base and the final policy are reported on the test seeds"
        assert {task: list(outcomes) for task, outcomes in reported["eval_outcomes"].items()} == {
            "transfer_cube": test_seeds
        }, "one outcome per test seed"
    assert list(rounds[0]["held_out_instruction_outcomes"]) == [], "only the final policy is evaluated so"
    assert {task: list(outcomes) for task, outcomes in rounds[1]["held_out_instruction_outcomes"].items()} == {
        "transfer_cube": test_seeds
    }, "the final policy is also evaluated with held-out instructions, on the same test seeds"
    for name in ("summary.md", "success.png", "interventions.png", "before.gif", "after.gif", "facts.json"):
        assert (report / name).stat().st_size > 0, name
    summary = (report / "summary.md").read_text()
    assert "95%" in summary and "v000010" in summary
    assert "| held-out instructions |" in summary and "Final policy with held-out instructions" in summary
    facts = json.loads((report / "facts.json").read_text())
    assert facts["split"] == "test" and facts["final_held_out_instructions"].endswith("/2)")
    assert "round 1/1" in stdout and "test success" in stdout
    assert "progress bc 60/60 steps" in trainer_log.parent.joinpath("pretrain.log").read_text()
    assert "bc 60/60 steps" in stdout and "train 10/10 updates" in stdout, "child progress reaches the console"
    assert "takeovers: " in stdout, "deployment lines name the operator's takeover reasons"


def test_store_holds_verified_demonstrations_and_deployments_and_both_policy_versions(demo_run):
    work_dir, _ = demo_run
    kinds = {}
    for folder in committed_episodes(work_dir):
        manifest = verify_folder(folder, kind="episode")
        kinds.setdefault(manifest.facts["lwd.episode_kind"], []).append(folder)
    assert len(kinds["demonstration"]) == 6
    assert len(kinds["deployment"]) == 4
    deployment = BagReader(kinds["deployment"][0])
    assert deployment.info.custom_data["lwd.policy_versions"] == "v000000-bc"
    assert deployment.info.custom_data["lwd.outcome"] in ("success", "failure")
    policies = work_dir / "fleet" / "policies"
    assert (policies / "channels" / "stable").read_text().strip() == "v000010"
    for version in ("v000000-bc", "v000010"):
        assert verify_folder(policies / version, kind="policy").facts["version"] == version


def test_robots_hot_swapped_the_new_version_without_restarting(demo_run):
    work_dir, _ = demo_run
    for robot in (work_dir / "robots").iterdir():
        cached = sorted(path.name for path in (robot / "policy_cache").iterdir() if not path.name.startswith("."))
        assert cached == ["v000000-bc", "v000010"], robot.name
        assert not list((robot / "spool").glob("*/manifest.json")), "every committed episode was uploaded"


def test_a_second_run_into_the_same_folder_is_refused_and_changes_nothing(demo_run):
    work_dir, _ = demo_run
    before = sorted(str(path) for path in work_dir.rglob("*"))
    result = subprocess.run(
        [sys.executable, "-m", "lwd.cli", "demo", "--preset", "quick", "--work-dir", str(work_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "already holds a demo run" in result.stdout
    assert sorted(str(path) for path in work_dir.rglob("*")) == before


def test_evaluate_runs_the_channels_current_policy_on_validation_seeds_of_a_copied_store(demo_run, tmp_path):
    work_dir, _ = demo_run
    for part in ("fleet", "keys"):  # a demo's robots trust only its own release key
        shutil.copytree(work_dir / part, tmp_path / part)
    episodes = committed_episodes(tmp_path)
    loop = DemoLoop(preset("quick"), tmp_path, progress=Progress(emit=lambda line: None))
    result = loop.evaluate(per_task=1)
    assert result.policy_version == "v000010"
    assert list(result.eval_outcomes["transfer_cube"]) == list(split_seeds("validation", 1))
    assert result.eval_rate.trials == 1 and result.eval_split == "validation"
    assert committed_episodes(tmp_path) == episodes, "evaluation episodes are not recorded"
    with pytest.raises(SplitError, match="test split is reserved"):
        loop.evaluate(per_task=1, split="test")


def test_paired_bench_finds_no_difference_between_two_copies_of_one_policy(demo_run, tmp_path):
    work_dir, _ = demo_run
    for name in ("first", "second"):
        for part in ("fleet", "keys"):
            shutil.copytree(work_dir / part, tmp_path / name / part)
    script = Path(__file__).parents[2] / "bench" / "paired.py"
    folders = [str(tmp_path / "first"), str(tmp_path / "second")]
    result = subprocess.run(
        [sys.executable, str(script), "--preset", "quick", "--per-task", "2", *folders],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith(("| first |", "| second |"))]
    assert len(rows) == 3 and rows[0].split("|")[3:] == rows[1].split("|")[3:], "evaluation is deterministic per seed"
    assert "| second | 0 vs 0 (p = 1.000) | 0 vs 0 (p = 1.000) |" in result.stdout


def test_paired_bench_refuses_a_folder_without_a_store(tmp_path):
    script = Path(__file__).parents[2] / "bench" / "paired.py"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    assert "holds no fleet store" in result.stderr

"""The experiment tests' stand-ins: robot processes and ``lwd`` commands that only record what a demo run asks of
them, so the routing of seeds, settings and folders is tested without training anything."""

from __future__ import annotations

import pytest
from lwd_experiment.demo_loop import DemoLoop
from lwd_experiment.presets import preset
from lwd_experiment.sim_robot import EpisodeJob, EpisodeSummary

QUICK_TWO_ROUNDS = preset("quick", rounds=2, eval_episodes_per_task=1, final_eval_episodes_per_task=3)
"""The quick preset cut to two rounds and a few evaluation seeds."""


class RecordingFleet:
    """Stands in for the robot processes: every batch of jobs is kept; even seeds succeed."""

    def __init__(self) -> None:
        self.batches: list[list[EpisodeJob]] = []

    def run(self, jobs: list[EpisodeJob], on_done=None) -> tuple[list[EpisodeSummary], list]:
        self.batches.append(list(jobs))
        done = [EpisodeSummary("sim_00", job.task, job.seed, "v1", job.seed % 2 == 0, 5, mode=job.mode) for job in jobs]
        for summary in done:
            on_done(summary)
        return done, []

    def close(self) -> None:
        """Nothing to release: no robot processes were started."""


@pytest.fixture
def recorded_loops(monkeypatch, tmp_path) -> tuple[RecordingFleet, list[list[str]]]:
    """Every DemoLoop of the test runs its episodes on one RecordingFleet and only records its ``lwd`` commands;
    returns the fleet and the recorded command lines."""
    fleet = RecordingFleet()
    commands: list[list[str]] = []
    monkeypatch.setattr(DemoLoop, "_fleet", lambda self: fleet)
    monkeypatch.setattr(DemoLoop, "run_lwd", lambda self, stage, arguments: commands.append(arguments))
    monkeypatch.setattr(DemoLoop, "release_key", lambda self: tmp_path / "release.key")
    return fleet, commands

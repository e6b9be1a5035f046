"""lwd_sim.process_fleet: spawned robot processes with their own ids and seed streams; crashes are reported."""

from __future__ import annotations

import functools
import importlib

import pytest
from lwd_sim.operator_trials import demonstration_worker
from lwd_sim.process_fleet import FleetError, WorkerSpec, robot_ids, run_fleet


def test_fleet_runs_workers_with_their_own_ids_and_seeds():
    worker = functools.partial(demonstration_worker, task="transfer_cube", episodes=1, max_steps=200)
    results = run_fleet(worker, n_robots=2, seed=3, processes=2, prefix="cell")
    assert [result.robot_id for result in results] == ["cell-00", "cell-01"]
    assert all(result.ok for result in results), [result.error for result in results]
    seeds = [result.value[0].seed for result in results]
    assert seeds[0] != seeds[1]
    assert all(result.value[0].success for result in results)
    again = run_fleet(worker, n_robots=2, seed=3, processes=2, prefix="cell")
    assert [result.value[0].seed for result in again] == seeds


CRASHER = """
import os


def crash_first_robot(spec):
    if spec.index == 0:
        os._exit(3)
    return spec.robot_id
"""


def test_a_failing_worker_is_reported_with_its_traceback():
    failing = functools.partial(demonstration_worker, task="no_such_task", episodes=1)
    results = run_fleet(failing, n_robots=1)
    assert not results[0].ok and "ConfigError" in results[0].error and "no_such_task" in results[0].error


def test_a_dead_worker_process_is_reported_and_does_not_stop_the_others(tmp_path, monkeypatch):
    (tmp_path / "lwd_sim_test_crasher.py").write_text(CRASHER)
    monkeypatch.syspath_prepend(str(tmp_path))
    crasher = importlib.import_module("lwd_sim_test_crasher")
    results = run_fleet(crasher.crash_first_robot, n_robots=3, processes=2)
    assert not results[0].ok and results[0].exitcode == 3 and "died without a result" in results[0].error
    assert [result.value for result in results[1:]] == ["sim-01", "sim-02"]


def test_seed_streams_are_independent_per_robot():
    specs = [WorkerSpec(name, i, seq) for i, (name, seq) in enumerate(zip(robot_ids(2), _spawn(7, 2), strict=True))]
    assert specs[0].episode_seeds(5) != specs[1].episode_seeds(5)
    assert specs[0].episode_seeds(5) == WorkerSpec("x", 0, _spawn(7, 2)[0]).episode_seeds(5)
    assert robot_ids(3) == ["sim-00", "sim-01", "sim-02"]


def _spawn(seed: int, count: int):
    import numpy as np

    return np.random.SeedSequence(seed).spawn(count)


def test_bad_fleet_arguments():
    with pytest.raises(FleetError, match="n_robots"):
        run_fleet(demonstration_worker, n_robots=0)
    with pytest.raises(FleetError, match="processes"):
        run_fleet(demonstration_worker, n_robots=1, processes=-1)

"""The ``suite`` preset, scaled down, runs the whole loop over all six tasks: demonstrations → BC → deploy →
train → evaluate, with each task's step budget, six object slots and a per-task report."""

from __future__ import annotations

import json
import re

import pytest
from lwd_experiment.demo_loop import DemoLoop, Progress
from lwd_experiment.presets import preset
from lwd_experiment.seed_splits import split_seeds
from lwd_sim.tasks import TASKS

pytestmark = pytest.mark.slow

TINY = {
    "max_steps": 160,
    "demos_per_task": 1,
    "bc_steps": 20,
    "replays_per_task": 1,
    "perception_steps": 5,
    "pixel_bc_steps": 20,
    "bc_batch_size": 8,
    "rounds": 1,
    "episodes_per_round": 6,
    "updates_per_round": 5,
    "trainer_batch_size": 16,
    "eval_episodes_per_task": 1,
    "final_eval_episodes_per_task": 1,
    "held_out_instruction_episodes_per_task": 1,
}
"""The suite preset at the smallest size that still runs every stage: one demonstration, one replay and one
evaluation seed per task, a few perception and flow steps, one round with one fleet episode per task."""


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory):
    chosen = preset("suite", **TINY)
    lines: list[str] = []
    loop = DemoLoop(chosen, tmp_path_factory.mktemp("suite") / "run", Progress(emit=lines.append), split="validation")
    return chosen, loop, loop.run(), lines


def test_the_suite_preset_covers_every_task_with_slots_for_the_largest(suite_run):
    chosen, loop, _, _ = suite_run
    assert set(chosen.tasks) == set(TASKS) and len(chosen.tasks) == 6
    assert chosen.task_objects == len(TASKS["tidy_cubes"].objects) == 6
    assert chosen.vla_config().perceived_objects == 6, "from pixels, an object head for every slot"
    assert chosen.max_steps_for("tidy_cubes") == 5 * chosen.max_steps
    assert chosen.max_steps_for("pick_colour") == chosen.max_steps
    assert not loop.failures, [failure.error for failure in loop.failures]


def test_each_task_ran_under_its_own_step_budget(suite_run):
    chosen, _, _, lines = suite_run
    steps: dict[str, list[int]] = {}
    for task, count in re.findall(r"(\w+) seed \d+ (?:success|failure) in (\d+) steps", "\n".join(lines)):
        steps.setdefault(task, []).append(int(count))
    assert set(steps) == set(chosen.tasks), "every task ran episodes"
    for task, counts in steps.items():
        assert max(counts) <= chosen.max_steps_for(task), task
    assert max(steps["tidy_cubes"]) > chosen.max_steps, "the long task ran past a short task's budget"


def test_every_round_reports_each_task_with_its_stage_progress(suite_run):
    chosen, loop, summary, _ = suite_run
    rounds = json.loads((summary.parent / "results.json").read_text())
    seed = str(split_seeds("validation", 1)[0])
    assert [r["round_index"] for r in rounds] == [0, 1]
    for reported in rounds:
        assert {task: list(outcomes) for task, outcomes in reported["eval_outcomes"].items()} == {
            task: [seed] for task in chosen.tasks
        }
        assert reported["max_stages"] == {task: TASKS[task].max_stage for task in chosen.tasks}
        assert all(0 <= reported["eval_stages"][task][seed] <= TASKS[task].max_stage for task in chosen.tasks)
    assert {task: len(outcomes) for task, outcomes in rounds[1]["fleet_outcomes"].items()} == dict.fromkeys(
        chosen.tasks, 1
    ), "one fleet episode of each task"
    assert set(rounds[1]["held_out_instruction_outcomes"]) == set(chosen.tasks)
    text = summary.read_text()
    for task in chosen.tasks:
        rows = [line for line in text.splitlines() if line.startswith(("| 0 | " + task + " |", "| 1 | " + task + " |"))]
        assert len(rows) == 2, task
        assert f"/{TASKS[task].max_stage} (" in rows[0], "stage progress of the task's own stages"
    for name in ("success.png", "stages.png", "interventions.png"):
        assert (summary.parent / name).stat().st_size > 0, name
    facts = json.loads((summary.parent / "facts.json").read_text())
    assert set(facts["final_per_task"]) == set(chosen.tasks)
    assert loop.rounds[-1].stage_progress_for("tidy_cubes") is not None

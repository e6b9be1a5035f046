"""Demo presets: named sizes with overrides, and the policy inputs they train with."""

from __future__ import annotations

from pathlib import Path

import pytest
from lwd_experiment.demo_loop import DemoLoop
from lwd_experiment.presets import PRESETS, preset
from lwd_sim.tasks import TASKS


def test_pixel_inputs_train_an_object_head_and_privileged_inputs_read_true_positions() -> None:
    pixels = preset("default", inputs="pixels").vla_config()
    privileged = preset("default", inputs="privileged").vla_config()
    assert (pixels.object_slots, pixels.perceived_objects) == (0, 2)
    assert (privileged.object_slots, privileged.perceived_objects) == (2, 0)
    assert pixels.io_signature() != privileged.io_signature(), "a robot feeds positions only to the privileged one"


def test_unknown_presets_and_inputs_are_refused_naming_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid presets are"):
        preset("huge")
    with pytest.raises(ValueError, match=r"valid inputs are \['pixels', 'privileged'\]"):
        preset("quick", inputs="lidar")
    assert all(p.inputs in ("pixels", "privileged") for p in PRESETS.values())


def test_make_demo_and_the_benchmark_presets_learn_from_pixels_and_only_the_ci_loop_reads_true_positions() -> None:
    assert {name: chosen.inputs for name, chosen in PRESETS.items()} == {
        "quick": "privileged", "default": "pixels", "full": "pixels", "suite": "pixels"
    }  # fmt: skip


def test_the_suite_runs_every_task_with_slots_for_the_largest_and_make_demo_keeps_its_two_tasks() -> None:
    suite = preset("suite")
    assert set(suite.tasks) == set(TASKS) and suite.task_objects == max(len(t.objects) for t in TASKS.values()) == 6
    default = preset("default")
    assert default.tasks == ("transfer_cube", "insertion") and default.task_objects == 2


def test_a_long_task_gets_a_step_budget_in_proportion_to_its_horizon() -> None:
    default, suite = preset("default"), preset("suite")
    assert [default.max_steps_for(task) for task in default.tasks] == [300, 300], "make demo's budget is unchanged"
    assert suite.max_steps_for("tidy_cubes") == 5 * suite.max_steps == 1500, "horizon 2000 against 400"
    assert suite.max_steps_for("pick_colour") == suite.max_steps
    settings = DemoLoop(suite, Path("unused")).robot_settings()[0]
    assert settings.max_steps_for("tidy_cubes") == 1500 and settings.max_steps_for("insertion") == 300


def test_presets_refuse_unknown_tasks_and_too_few_object_slots() -> None:
    with pytest.raises(ValueError, match="valid tasks are"):
        preset("quick", tasks=("juggling",))
    with pytest.raises(ValueError, match="task_objects 2 < the 6 objects"):
        preset("default", tasks=("transfer_cube", "tidy_cubes"))

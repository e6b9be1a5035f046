"""The loop from pixels, scaled down, end to end: demonstrations and replays are recorded, BC trains the object head
on every recorded frame with positions, robots run a policy that reads camera, instruction and joints only."""

from __future__ import annotations

import pytest
from lwd_experiment.demo_loop import DemoLoop, Progress
from lwd_experiment.presets import preset
from lwd_interfaces.manifest import verify_folder
from lwd_policy.config import VLAConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pixels_run(tmp_path_factory):
    chosen = preset("quick", inputs="pixels", replays_per_task=2)
    lines: list[str] = []
    loop = DemoLoop(chosen, tmp_path_factory.mktemp("pixels") / "run", Progress(emit=lines.append), split="validation")
    return loop, loop.run(), lines


def test_replays_are_recorded_as_failed_demonstrations_beside_the_demonstrations(pixels_run):
    loop, _, lines = pixels_run
    assert not loop.failures, [failure.error for failure in loop.failures]
    outcomes: dict[str, list[str]] = {}
    for manifest in (loop.work_dir / "fleet" / "episodes").glob("*/*/*/manifest.json"):
        facts = verify_folder(manifest.parent, kind="episode").facts
        outcomes.setdefault(facts["lwd.episode_kind"], []).append(facts["lwd.outcome"])
    assert sorted(outcomes["demonstration"]) == ["failure"] * 2 + ["success"] * 6
    assert any("replays for perception labels: 2 per task" in line for line in lines)


def test_the_pixel_policy_reads_no_object_positions_and_its_report_says_pixels(pixels_run):
    loop, summary, _ = pixels_run
    config = VLAConfig.from_json((loop.work_dir / "vla_config.json").read_text())
    assert config.object_slots == 0 and config.perceived_objects > 0
    assert "Policy inputs: pixels." in summary.read_text()

"""Progress lines of long commands: throttled, with rate and time left, and the prefix a parent picks out."""

from __future__ import annotations

from lwd_interfaces.progress import PREFIX, ProgressMeter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_are_throttled_and_report_rate_and_time_left_from_the_first_update():
    """Ten seconds of start-up before the first step count neither in the rate nor in the time left."""
    clock, lines = FakeClock(), []
    meter = ProgressMeter("bc", 100, "steps", every_s=5.0, emit=lines.append, clock=clock)
    clock.now += 10.0
    meter.update(1, "bc_loss 2.0")
    clock.now += 2.0
    meter.update(10, "bc_loss 1.0")
    assert lines == [f"{PREFIX} bc 1/100 steps | bc_loss 2.0"]
    clock.now += 4.0
    meter.update(31)
    assert lines[-1] == f"{PREFIX} bc 31/100 steps | 5.00 steps/s | 14 s left"


def test_the_last_unit_always_prints_and_a_resumed_run_counts_only_its_own_work():
    clock, lines = FakeClock(), []
    meter = ProgressMeter("train", 1000, "updates", emit=lines.append, clock=clock)
    clock.now += 100.0
    meter.update(901)
    clock.now += 49.0
    meter.update(950)
    clock.now += 0.5
    meter.update(1000)
    assert lines[0] == f"{PREFIX} train 901/1000 updates"
    assert lines[1].endswith("1.00 updates/s | 50 s left")
    assert lines[2] == f"{PREFIX} train 1000/1000 updates | 2.00 updates/s | done in 2 min 30 s"


def test_the_time_left_follows_a_change_of_pace():
    """Slow steps, then steps ten times faster: the estimate after the change uses the new pace."""
    clock, lines = FakeClock(), []
    meter = ProgressMeter("bc", 1000, "steps", every_s=5.0, emit=lines.append, clock=clock)
    meter.update(0)
    clock.now += 10.0
    meter.update(10)
    assert lines[-1].endswith("1.00 steps/s | 16 min 30 s left")
    clock.now += 10.0
    meter.update(110)
    assert lines[-1].endswith("10.00 steps/s | 1 min 29 s left")


def test_bc_reports_its_perception_and_flow_phases_each_with_its_own_count(capsys):
    """The flow phase's first line starts its own count, so no estimate mixes the two paces."""
    from lwd.commands.train import BCProgress

    progress = BCProgress(perception_steps=3, flow_steps=2)
    for step in range(1, 6):
        progress(step, 0.5)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{PREFIX} bc perception 1/3 steps | perception_loss 0.5000"
    assert lines[1].startswith(f"{PREFIX} bc perception 3/3 steps | ") and "done in" in lines[1]
    assert lines[2] == f"{PREFIX} bc 1/2 steps | bc_loss 0.5000"
    assert lines[3].startswith(f"{PREFIX} bc 2/2 steps | ") and lines[3].endswith("bc_loss 0.5000")
    assert len(lines) == 4

"""Progress lines of long commands: throttled, with rate and time left, and the prefix a parent picks out."""

from __future__ import annotations

from lwd_interfaces.progress import PREFIX, ProgressMeter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_are_throttled_and_report_rate_and_time_left():
    clock, lines = FakeClock(), []
    meter = ProgressMeter("bc", 100, "steps", every_s=5.0, emit=lines.append, clock=clock)
    clock.now += 2.0
    meter.update(10, "bc_loss 1.0")
    clock.now += 1.0
    meter.update(20)
    assert lines == [f"{PREFIX} bc 10/100 steps | 5.00 steps/s | 18 s left | bc_loss 1.0"]
    clock.now += 5.0
    meter.update(50)
    assert lines[-1] == f"{PREFIX} bc 50/100 steps | 6.25 steps/s | 8 s left"


def test_the_last_unit_always_prints_and_a_resumed_run_counts_only_its_own_work():
    clock, lines = FakeClock(), []
    meter = ProgressMeter("train", 1000, "updates", start=900, emit=lines.append, clock=clock)
    clock.now += 100.0
    meter.update(950)
    clock.now += 0.5
    meter.update(1000)
    assert lines[0].endswith("0.50 updates/s | 1 min 40 s left")
    assert lines[1] == f"{PREFIX} train 1000/1000 updates | 1.00 updates/s | done in 1 min 40 s"

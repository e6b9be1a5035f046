"""Benchmark of lwd_intervention's per-step cost: arbiter steps per mode, and the full session step.

At 50 Hz the control loop has 20 ms per step; this shows how little of it arbitration uses.
Run: .venv/bin/python bench/bench_intervention.py [--steps N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from lwd_intervention.arbiter import Arbiter, ArbiterConfig, StepInput, TeleopSample
from lwd_intervention.events import OperatorEvent
from lwd_intervention.joy import JoyMapper
from lwd_intervention.labels import EpisodeLabeler
from lwd_intervention.messages import intervention_state_msg, joint_command_msg
from lwd_intervention.modes import SOURCE_LEADER
from lwd_intervention.session import EpisodeTemplate, InterventionSession

STEP_NS = 20_000_000
JOINTS = [f"joint_{i}" for i in range(14)]


def _inputs(steps: int, teleop: bool, seed: int = 0) -> list[StepInput]:
    rng = np.random.default_rng(seed)
    inputs = []
    for index in range(steps):
        stamp = (index + 1) * STEP_NS
        target = 0.3 * np.sin(index / 50.0) + 0.01 * rng.standard_normal(14)
        sample = TeleopSample(target, stamp, SOURCE_LEADER) if teleop else None
        inputs.append(StepInput(stamp, target, target, sample))
    return inputs


def _time_per_step(run, inputs: list[StepInput]) -> float:
    start = time.perf_counter()
    for step_input in inputs:
        run(step_input)
    return (time.perf_counter() - start) / len(inputs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    rows = []

    autonomous = Arbiter(ArbiterConfig())
    rows.append(("arbiter, AUTONOMOUS", _time_per_step(autonomous.step, _inputs(args.steps, teleop=False))))

    teleop = Arbiter(ArbiterConfig())
    teleop.step(StepInput(0, np.zeros(14)))
    teleop.takeover(SOURCE_LEADER)
    rows.append(("arbiter, TELEOP (blend then track)", _time_per_step(teleop.step, _inputs(args.steps, teleop=True))))

    paused = Arbiter(ArbiterConfig())
    paused.step(StepInput(0, np.zeros(14)))
    paused.estop()
    rows.append(("arbiter, ESTOP (hold)", _time_per_step(paused.step, _inputs(args.steps, teleop=True))))

    session = InterventionSession(
        Arbiter(ArbiterConfig()), EpisodeLabeler(), EpisodeTemplate("robot-0", "transfer_cube"), SOURCE_LEADER
    )
    session.start_episode(0)
    session.handle(OperatorEvent.TAKEOVER, "operator/joy", 0)

    def session_step(step_input: StepInput) -> None:
        output = session.step(step_input)
        joint_command_msg(output.command, output.stamp_ns, JOINTS)
        intervention_state_msg(output)

    rows.append(("session step + build 2 messages", _time_per_step(session_step, _inputs(args.steps, teleop=True))))

    mapper = JoyMapper({"takeover": 4, "hand_back": 5, "success": 0, "failure": 1, "estop": 8}, 11)
    presses = [[int(b) for b in row] for row in np.random.default_rng(1).integers(0, 2, size=(args.steps, 11))]
    start = time.perf_counter()
    for buttons in presses:
        mapper.update(buttons)
    rows.append(("joy mapper update (11 buttons)", (time.perf_counter() - start) / args.steps * 1e6))

    print(f"steps per case: {args.steps}")
    print(f"| {'case':<36} | {'us/step':>8} | {'% of 20 ms':>10} |")
    print(f"|{'-' * 38}|{'-' * 9}:|{'-' * 11}:|")
    for name, micros in rows:
        print(f"| {name:<36} | {micros:8.1f} | {micros / 200:9.2f}% |")


if __name__ == "__main__":
    main()

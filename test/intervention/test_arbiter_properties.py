"""Property tests of the takeover arbiter over random input and event sequences (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lwd_intervention.arbiter import Arbiter, ArbiterConfig, StepInput, TeleopSample
from lwd_intervention.events import ARBITER_EVENTS, OperatorEvent
from lwd_intervention.modes import SOURCE_HOLD, SOURCE_POLICY, Mode

DOF = 14
STEP_NS = 20_000_000
CONFIG = ArbiterConfig(dof=DOF, max_step_delta=0.05, agreement_tolerance=0.05, blend_steps=5, teleop_timeout_s=0.1)
TELEOP_SOURCES = ("teleop/leader", "operator/scripted")

offsets = st.floats(min_value=-2.0, max_value=2.0, allow_nan=False)

EVENTS = sorted(ARBITER_EVENTS, key=lambda e: e.value)
step_strategy = st.fixed_dictionaries(
    {
        "event": st.sampled_from([None] * 12 + [OperatorEvent.TAKEOVER] * 3 + [OperatorEvent.HAND_BACK] * 2 + EVENTS),
        "takeover_source": st.sampled_from(TELEOP_SOURCES),
        "policy": st.one_of(st.none(), offsets, offsets, offsets),
        "policy_bad": st.sampled_from([None] * 10 + [float("nan"), float("inf")]),
        "teleop": st.one_of(st.none(), offsets, offsets, offsets),
        "teleop_near": st.booleans(),
        "teleop_bad": st.sampled_from([None] * 10 + [float("nan"), -float("inf")]),
        "teleop_source": st.sampled_from([TELEOP_SOURCES[0]] * 3 + [TELEOP_SOURCES[1]]),
        "teleop_age_steps": st.sampled_from([0, 0, 0, 1, 2, -1, 8]),
        "stamp_back": st.sampled_from([False] * 15 + [True]),
        "deadman": st.sampled_from([True] * 4 + [False]),
    }
)


def _vector(offset: float, bad: float | None, joint: int) -> np.ndarray:
    values = np.full(DOF, offset)
    values[joint % DOF] += 0.3 * offset
    if bad is not None:
        values[joint % DOF] = bad
    return values


def _run(steps: list[dict], config: ArbiterConfig = CONFIG):
    """Drive an arbiter with a perfectly tracking robot; yield (step spec, event result, output, previous command)."""
    arbiter = Arbiter(config)
    measured = np.zeros(DOF)
    stamp = 1_000_000_000
    previous = None
    for index, spec in enumerate(steps):
        result = None
        if spec["event"] is not None:
            result = arbiter.handle(spec["event"], spec["takeover_source"])
        stamp = stamp - STEP_NS if spec["stamp_back"] else stamp + STEP_NS
        policy = None if spec["policy"] is None else _vector(spec["policy"], spec["policy_bad"], index)
        teleop = None
        if spec["teleop"] is not None:
            positions = _vector(spec["teleop"], spec["teleop_bad"], index + 3)
            if spec["teleop_near"]:
                positions = measured + 0.01 * positions
            teleop = TeleopSample(
                positions=positions,
                stamp_ns=stamp - spec["teleop_age_steps"] * STEP_NS,
                source=spec["teleop_source"],
            )
        output = arbiter.step(StepInput(stamp, measured, policy, teleop, spec["deadman"]))
        yield spec, result, output, previous, arbiter
        previous = output.command
        measured = output.command.copy()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step_strategy, min_size=1, max_size=60))
def test_no_executed_command_ever_jumps_above_the_limit(steps: list[dict]) -> None:
    for _, _, output, previous, _ in _run(steps):
        assert np.all(np.isfinite(output.command))
        if previous is not None:
            assert np.max(np.abs(output.command - previous)) <= CONFIG.max_step_delta + 1e-12


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step_strategy, min_size=1, max_size=60))
def test_every_step_has_exactly_one_source_and_the_flag_matches_who_controls(steps: list[dict]) -> None:
    controller: str | None = None
    for spec, result, output, previous, arbiter in _run(steps):
        if result is not None and result.accepted and spec["event"] is OperatorEvent.TAKEOVER:
            controller = spec["takeover_source"]
        assert isinstance(output.source, str) and output.source
        if output.source == SOURCE_POLICY:
            assert output.mode is Mode.AUTONOMOUS and not output.intervention
        elif output.source == SOURCE_HOLD:
            assert not output.intervention
            if previous is not None:
                np.testing.assert_array_equal(output.command, previous)
        else:
            assert output.mode is Mode.TELEOP
            assert output.source == controller == arbiter.teleop_source
            assert output.intervention
        assert output.intervention == (output.mode is Mode.TELEOP and output.source not in (SOURCE_POLICY, SOURCE_HOLD))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step_strategy, min_size=1, max_size=60))
def test_estop_always_wins_and_latches_until_reset(steps: list[dict]) -> None:
    latched_command = None
    for spec, result, output, previous, _ in _run(steps):
        event = spec["event"]
        if event is OperatorEvent.ESTOP:
            assert result is not None and result.accepted and result.mode is Mode.ESTOP
            latched_command = previous
        elif event is OperatorEvent.RESET_ESTOP and result is not None and result.accepted:
            assert result.mode is Mode.PAUSED
            latched_command = None
        elif event is not None and latched_command is not None:
            assert result is not None and not result.accepted
        if event is OperatorEvent.ESTOP or latched_command is not None:
            assert output.mode is Mode.ESTOP
            assert output.source == SOURCE_HOLD and not output.intervention
            if latched_command is not None:
                np.testing.assert_array_equal(output.command, latched_command)
            latched_command = output.command


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step_strategy, min_size=1, max_size=40))
def test_deadman_released_never_leaves_the_operator_in_control(steps: list[dict]) -> None:
    config = ArbiterConfig(dof=DOF, blend_steps=3, teleop_timeout_s=0.1, require_deadman=True)
    for spec, _, output, _, _ in _run(steps, config):
        if not spec["deadman"] and not spec["stamp_back"]:
            assert not output.intervention

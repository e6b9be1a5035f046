"""Safety filter and chunk blending: adversarial outputs never reach the robot unfiltered."""

from __future__ import annotations

import numpy as np
import pytest
from lwd_policy.blending import Chunk, ChunkBlender
from lwd_policy.safety import SafetyConfigError, SafetyFilter, SafetyLimits, robot_limits


def test_nan_and_inf_hold_the_previous_command() -> None:
    safety = SafetyFilter(robot_limits())
    previous = np.linspace(0.0, 0.5, 14)
    for bad in (np.nan, np.inf, -np.inf):
        proposed = previous.copy()
        proposed[3] = bad
        outcome = safety.apply(proposed, previous)
        assert outcome.nonfinite
        np.testing.assert_array_equal(outcome.command, previous)


def test_huge_values_are_clamped_and_rate_limited() -> None:
    limits = robot_limits(arm_max_delta=0.05, gripper_max_delta=0.1)
    safety = SafetyFilter(limits)
    command = np.zeros(14)
    for _ in range(200):
        outcome = safety.apply(np.full(14, 1e9), command)
        assert np.all(np.abs(outcome.command - command) <= limits.max_delta + 1e-12)
        assert np.all(outcome.command <= limits.upper) and np.all(outcome.command >= limits.lower)
        command = outcome.command
    np.testing.assert_allclose(command, limits.upper)
    outcome = safety.apply(np.full(14, -1e30), command)
    assert outcome.clamped and outcome.rate_limited
    np.testing.assert_allclose(outcome.command, limits.upper - limits.max_delta)


def test_previous_outside_limits_is_clamped_too() -> None:
    safety = SafetyFilter(SafetyLimits(lower=[-1.0, -1.0], upper=[1.0, 1.0], max_delta=[0.1]))
    outcome = safety.apply(np.array([np.nan, 0.0]), np.array([5.0, 0.0]))
    np.testing.assert_array_equal(outcome.command, [1.0, 0.0])


def test_malformed_limits_are_refused() -> None:
    with pytest.raises(SafetyConfigError, match="same length"):
        SafetyLimits(lower=[0.0, 0.0], upper=[1.0], max_delta=[0.1])
    with pytest.raises(SafetyConfigError, match="lower limit above upper"):
        SafetyLimits(lower=[2.0], upper=[1.0], max_delta=[0.1])
    with pytest.raises(SafetyConfigError, match="14 joints"):
        SafetyFilter(robot_limits()).apply(np.zeros(7), np.zeros(7))


def _chunk(chunk_id: int, start: int, value: float, horizon: int = 10) -> Chunk:
    return Chunk(chunk_id, start, np.full((horizon, 2), value), f"v{chunk_id}", 0.001, 0.0)


def test_blender_skips_past_rows_and_ramps_the_new_chunk_in() -> None:
    blender = ChunkBlender(decay=0.1, ramp_steps=3)
    blender.add(_chunk(0, 0, 0.0), arrival_step=0)
    assert blender.remaining(0) == 10
    assert blender.action_at(0).action[0] == 0.0
    blender.add(_chunk(1, 5, 1.0), arrival_step=7)
    values = [blender.action_at(step).action[0] for step in range(7, 15)]
    assert all(0.0 < v <= 1.0 for v in values)
    assert values == sorted(values)
    assert values[0] < 0.5 and values[-1] == 1.0
    assert blender.action_at(14).chunk.chunk_id == 1
    assert blender.action_at(15) is None and blender.remaining(15) == 0

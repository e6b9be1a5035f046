"""Deterministic takeover, hand-back, watchdog and bad-input behaviour of the arbiter."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from lwd_intervention.arbiter import Arbiter, ArbiterConfig, ArbiterInputError, StepInput, TeleopSample
from lwd_intervention.modes import SOURCE_HOLD, SOURCE_LEADER, SOURCE_POLICY, Mode

DOF = 14
STEP_NS = 20_000_000
CONFIG = ArbiterConfig(dof=DOF, max_step_delta=0.05, agreement_tolerance=0.02, blend_steps=10, teleop_timeout_s=0.1)


class Rig:
    """An arbiter driving a perfectly tracking robot, one 20 ms step at a time."""

    def __init__(self, config: ArbiterConfig = CONFIG, start: float = 0.0) -> None:
        self.arbiter = Arbiter(config)
        self.measured = np.full(DOF, start)
        self.stamp = 10 * 1_000_000_000
        self.outputs = []

    def step(self, policy=None, teleop=None, teleop_age_steps: int = 0, deadman: bool = True, stamp=None):
        self.stamp = self.stamp + STEP_NS if stamp is None else stamp
        sample = None
        if teleop is not None:
            sample = TeleopSample(np.asarray(teleop, float), self.stamp - teleop_age_steps * STEP_NS, SOURCE_LEADER)
        policy = None if policy is None else np.asarray(policy, float)
        output = self.arbiter.step(StepInput(self.stamp, self.measured.copy(), policy, sample, deadman))
        self.outputs.append(output)
        self.measured = output.command.copy()
        return output


def test_takeover_is_immediate_when_the_teleop_device_agrees_with_the_robot() -> None:
    rig = Rig()
    rig.step(policy=np.zeros(DOF))
    assert rig.arbiter.takeover(SOURCE_LEADER).accepted
    output = rig.step(teleop=np.full(DOF, 0.01))
    assert output.mode is Mode.TELEOP and output.source == SOURCE_LEADER and output.intervention
    assert not output.blending
    np.testing.assert_allclose(output.command, 0.01)


def test_takeover_blends_when_the_teleop_device_disagrees_and_never_jumps() -> None:
    rig = Rig()
    rig.step(policy=np.zeros(DOF))
    rig.arbiter.takeover(SOURCE_LEADER)
    teleop = np.full(DOF, 0.3)
    first = rig.step(teleop=teleop)
    assert first.blending and first.intervention
    assert np.max(np.abs(first.command)) <= CONFIG.max_step_delta + 1e-12
    np.testing.assert_allclose(first.command, 0.3 / CONFIG.blend_steps)
    for _ in range(CONFIG.blend_steps):
        last = rig.step(teleop=teleop)
    assert not last.blending
    np.testing.assert_allclose(last.command, teleop)
    commands = np.array([o.command for o in rig.outputs])
    assert np.max(np.abs(np.diff(commands, axis=0))) <= CONFIG.max_step_delta + 1e-12


def test_hand_back_blends_from_the_operator_command_to_the_policy() -> None:
    rig = Rig()
    rig.step(policy=np.zeros(DOF))
    rig.arbiter.takeover(SOURCE_LEADER)
    rig.step(teleop=np.full(DOF, 0.01))
    assert rig.arbiter.hand_back().accepted
    policy = np.full(DOF, -0.2)
    output = rig.step(policy=policy)
    assert output.mode is Mode.AUTONOMOUS and output.source == SOURCE_POLICY and not output.intervention
    assert output.blending
    for _ in range(3 * CONFIG.blend_steps):
        output = rig.step(policy=policy)
    np.testing.assert_allclose(output.command, policy)
    commands = np.array([o.command for o in rig.outputs])
    assert np.max(np.abs(np.diff(commands, axis=0))) <= CONFIG.max_step_delta + 1e-12


def test_watchdog_pauses_and_holds_when_teleop_goes_stale() -> None:
    rig = Rig()
    rig.step(policy=np.zeros(DOF))
    rig.arbiter.takeover(SOURCE_LEADER)
    held = rig.step(teleop=np.full(DOF, 0.01)).command
    timeout_steps = int(CONFIG.teleop_timeout_s * 1e9 / STEP_NS)
    for _ in range(timeout_steps):
        output = rig.step()
        assert output.mode is Mode.TELEOP and output.intervention
    output = rig.step()
    assert output.mode is Mode.PAUSED and output.source == SOURCE_HOLD and not output.intervention
    assert any("watchdog" in warning for warning in output.warnings)
    np.testing.assert_array_equal(output.command, held)
    output = rig.step(teleop=np.full(DOF, 0.5), policy=np.ones(DOF))
    assert output.mode is Mode.PAUSED, "a paused arbiter resumes only on an explicit takeover or hand-back"
    np.testing.assert_array_equal(output.command, held)


def test_watchdog_ignores_a_sample_that_was_already_stale_when_it_arrived() -> None:
    rig = Rig()
    rig.step(policy=np.zeros(DOF))
    rig.arbiter.takeover(SOURCE_LEADER)
    timeout_steps = int(CONFIG.teleop_timeout_s * 1e9 / STEP_NS)
    for _ in range(timeout_steps + 1):
        output = rig.step(teleop=np.zeros(DOF), teleop_age_steps=20)
        assert not output.intervention
    output = rig.step(teleop=np.zeros(DOF), teleop_age_steps=20)
    assert output.mode is Mode.PAUSED


def test_deadman_release_pauses_when_required() -> None:
    rig = Rig(ArbiterConfig(dof=DOF, require_deadman=True))
    rig.step(policy=np.zeros(DOF))
    rig.arbiter.takeover(SOURCE_LEADER)
    assert rig.step(teleop=np.zeros(DOF), deadman=True).intervention
    output = rig.step(teleop=np.zeros(DOF), deadman=False)
    assert output.mode is Mode.PAUSED and not output.intervention


def test_estop_latches_and_only_reset_leaves_it() -> None:
    rig = Rig()
    rig.step(policy=np.zeros(DOF))
    rig.arbiter.estop()
    held = rig.step(policy=np.ones(DOF)).command
    assert not rig.arbiter.takeover(SOURCE_LEADER).accepted
    assert not rig.arbiter.hand_back().accepted
    assert not rig.arbiter.pause().accepted
    assert rig.step(policy=np.ones(DOF), teleop=np.zeros(DOF)).mode is Mode.ESTOP
    result = rig.arbiter.reset_estop()
    assert result.accepted and result.mode is Mode.PAUSED
    output = rig.step(policy=np.ones(DOF))
    assert output.mode is Mode.PAUSED
    np.testing.assert_array_equal(output.command, held)


def test_nan_teleop_command_is_logged_and_held_without_a_jump(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig()
    rig.step(policy=np.zeros(DOF))
    rig.arbiter.takeover(SOURCE_LEADER)
    good = rig.step(teleop=np.full(DOF, 0.01)).command
    bad = np.full(DOF, 0.01)
    bad[4] = np.nan
    with caplog.at_level(logging.WARNING, logger="lwd_intervention.arbiter"):
        output = rig.step(teleop=bad)
    assert "non-finite values at joints [4]" in caplog.text
    assert output.mode is Mode.TELEOP
    np.testing.assert_array_equal(output.command, good)
    assert np.all(np.isfinite(output.command))


def test_wrong_length_and_nan_policy_commands_hold(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig()
    start = rig.step(policy=np.zeros(DOF)).command
    with caplog.at_level(logging.WARNING, logger="lwd_intervention.arbiter"):
        short = rig.step(policy=np.ones(7))
        nan = rig.step(policy=np.full(DOF, np.nan))
    assert short.source == SOURCE_HOLD and nan.source == SOURCE_HOLD
    np.testing.assert_array_equal(nan.command, start)
    assert "has 7 values, expected 14" in caplog.text


def test_out_of_order_step_and_teleop_stamps_hold() -> None:
    rig = Rig()
    rig.step(policy=np.zeros(DOF))
    rig.arbiter.takeover(SOURCE_LEADER)
    rig.step(teleop=np.full(DOF, 0.01))
    before = rig.stamp
    output = rig.step(teleop=np.full(DOF, 0.04), stamp=before - STEP_NS)
    assert output.source == SOURCE_HOLD and not output.intervention
    assert "out-of-order step stamp" in output.warnings[0]
    rig.stamp = before
    output = rig.step(teleop=np.full(DOF, 0.04), teleop_age_steps=3)
    assert any("out-of-order teleop stamp" in warning for warning in output.warnings)
    np.testing.assert_allclose(output.command, 0.01)


def test_no_valid_joint_state_at_start_is_a_clear_error() -> None:
    arbiter = Arbiter(CONFIG)
    with pytest.raises(ArbiterInputError, match="no valid measured joint state"):
        arbiter.step(StepInput(1, np.full(DOF, np.nan)))


@pytest.mark.parametrize(
    "kwargs",
    [{"max_step_delta": 0.0}, {"blend_steps": 0}, {"teleop_timeout_s": float("nan")}, {"dof": 0}],
)
def test_invalid_config_is_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ArbiterConfig(**kwargs)


def test_takeover_with_a_reserved_source_is_refused() -> None:
    arbiter = Arbiter(CONFIG)
    assert not arbiter.takeover("policy").accepted
    assert arbiter.mode is Mode.AUTONOMOUS


@pytest.mark.parametrize(("age_ms", "executed"), [(100, True), (101, False)])
def test_a_policy_command_older_than_the_policy_timeout_is_not_executed(age_ms: int, executed: bool) -> None:
    """A policy that fell silent: its last command, 101 ms old against a 100 ms timeout, is held, not executed."""
    arbiter = Arbiter(ArbiterConfig(dof=DOF, max_step_delta=1.0, policy_timeout_s=0.1))
    now = 10 * 1_000_000_000
    command = np.full(DOF, 0.2)
    output = arbiter.step(StepInput(now, np.zeros(DOF), command, policy_stamp_ns=now - age_ms * 1_000_000))
    assert (output.source == SOURCE_POLICY) is executed
    np.testing.assert_allclose(output.command, command if executed else np.zeros(DOF))


def test_the_policy_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="policy_timeout_s"):
        ArbiterConfig(policy_timeout_s=0.0)

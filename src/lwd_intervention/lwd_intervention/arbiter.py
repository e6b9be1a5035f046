"""The takeover arbiter: decides, every control step, which command the robot executes.

It is a state machine over the modes AUTONOMOUS, TELEOP, PAUSED and ESTOP
(:class:`~lwd_intervention.modes.Mode`). Each step it takes the measured joint
positions, the policy's command and the latest teleop sample, and returns the executed
command together with the mode, exactly one source and the intervention flag that the
recorder stores, so every step says truthfully who was in control.

Safety rules it enforces:

* No jump, ever: every executed command differs from the previous one by at most
  ``max_step_delta`` per joint, whatever the mode, input or transition.
* Takeover is jump-free: control passes straight to the operator only when the teleop
  command agrees with the measured state (within ``agreement_tolerance``); otherwise the
  command blends from the last executed one to the operator's over ``blend_steps``.
  Hand-back to the policy blends the same way.
* Teleop watchdog: no fresh, valid teleop sample for ``teleop_timeout_s`` while in
  TELEOP (or a released deadman, when required) moves to PAUSED, which holds.
* E-stop always wins and latches; only an explicit reset leaves it (into PAUSED).
* Bad input (wrong length, NaN/inf, out-of-order stamps) is reported and held, never executed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

import numpy as np
from lwd_interfaces.robots import ALOHA

from lwd_intervention.events import ARBITER_EVENTS, OperatorEvent
from lwd_intervention.modes import RESERVED_SOURCES, SOURCE_HOLD, SOURCE_POLICY, Mode

NS_PER_S = 1_000_000_000


class WarningLogger(Protocol):
    """Anything with ``warning(message)``: a ``logging.Logger`` or an rclpy node logger."""

    def warning(self, message: str) -> object: ...


class ArbiterInputError(ValueError):
    """The arbiter cannot produce any command (no valid joint state has been seen yet)."""


@dataclass(frozen=True)
class ArbiterConfig:
    """Limits and timings of the arbiter; angles in the joint vector's units (rad, gripper 0..1)."""

    dof: int = ALOHA.dof
    max_step_delta: float = 0.05
    agreement_tolerance: float = 0.05
    blend_steps: int = 25
    teleop_timeout_s: float = 0.2
    require_deadman: bool = False
    policy_timeout_s: float = 0.1

    def __post_init__(self) -> None:
        if self.dof <= 0:
            raise ValueError(f"dof must be positive, got {self.dof}")
        if not (math.isfinite(self.max_step_delta) and self.max_step_delta > 0):
            raise ValueError(f"max_step_delta must be a positive finite number, got {self.max_step_delta}")
        if not (math.isfinite(self.agreement_tolerance) and self.agreement_tolerance >= 0):
            raise ValueError(f"agreement_tolerance must be finite and >= 0, got {self.agreement_tolerance}")
        if self.blend_steps < 1:
            raise ValueError(f"blend_steps must be >= 1, got {self.blend_steps}")
        if not (math.isfinite(self.teleop_timeout_s) and self.teleop_timeout_s > 0):
            raise ValueError(f"teleop_timeout_s must be a positive finite number, got {self.teleop_timeout_s}")
        if not (math.isfinite(self.policy_timeout_s) and self.policy_timeout_s > 0):
            raise ValueError(f"policy_timeout_s must be a positive finite number, got {self.policy_timeout_s}")


@dataclass(frozen=True)
class TeleopSample:
    """One operator joint command: positions, when it was produced [ns], and by which source."""

    positions: np.ndarray
    stamp_ns: int
    source: str


@dataclass(frozen=True)
class StepInput:
    """Everything the arbiter needs for one control step (stamps in ns of ROS time). ``policy_stamp_ns``, when
    the host knows it, is when ``policy_command`` was produced: older than ``policy_timeout_s``, it is not executed
    (the robot holds). A host that computes the command in the same step leaves it None."""

    stamp_ns: int
    measured: np.ndarray
    policy_command: np.ndarray | None = None
    teleop: TeleopSample | None = None
    deadman: bool = False
    policy_stamp_ns: int | None = None


@dataclass(frozen=True)
class StepOutput:
    """The arbiter's decision for one step; ``intervention`` is true iff an operator commands it."""

    stamp_ns: int
    command: np.ndarray
    mode: Mode
    source: str
    intervention: bool
    blending: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventResult:
    """Whether a mode request was accepted, the mode after it, and why."""

    accepted: bool
    mode: Mode
    message: str


class _Phase(Enum):
    """Handover progress inside the current mode."""

    STEADY = "steady"
    PENDING = "pending"
    BLENDING = "blending"


@dataclass
class _Blend:
    """A jump-free transition from ``start`` towards a moving target over ``steps`` steps."""

    start: np.ndarray
    steps: int
    done: int = 0

    def target(self, goal: np.ndarray) -> np.ndarray:
        self.done = min(self.done + 1, self.steps)
        alpha = self.done / self.steps
        return (1.0 - alpha) * self.start + alpha * goal

    @property
    def finished(self) -> bool:
        return self.done >= self.steps


@dataclass
class _TeleopTrack:
    """The active teleop source and its last accepted command."""

    source: str
    target: np.ndarray | None = None
    last_stamp_ns: int | None = None
    reference_stamp_ns: int | None = None
    rejected_stamps: set[int] = field(default_factory=set)


class Arbiter:
    """Takeover/hand-back state machine producing one executed command per control step."""

    def __init__(self, config: ArbiterConfig | None = None, logger: WarningLogger | None = None) -> None:
        self.config = config or ArbiterConfig()
        self._logger: WarningLogger = logger or logging.getLogger(__name__)
        self._mode = Mode.AUTONOMOUS
        self._phase = _Phase.STEADY
        self._blend: _Blend | None = None
        self._teleop: _TeleopTrack | None = None
        self._last_command: np.ndarray | None = None
        self._last_stamp_ns: int | None = None

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._mode

    @property
    def teleop_source(self) -> str | None:
        """The teleop source that holds (or is taking) control, if any."""
        return self._teleop.source if self._teleop else None

    @property
    def last_command(self) -> np.ndarray | None:
        """The last executed command (a copy), or None before the first step."""
        return None if self._last_command is None else self._last_command.copy()

    # ----------------------------------------------------------------- events

    def handle(self, event: OperatorEvent, source: str) -> EventResult:
        """Apply a mode-changing operator event; ``source`` names the teleop device for a takeover."""
        if event not in ARBITER_EVENTS:
            raise ValueError(f"{event.value!r} is not an arbiter event; arbiter events: {sorted(ARBITER_EVENTS)}")
        if event is OperatorEvent.TAKEOVER:
            return self.takeover(source)
        if event is OperatorEvent.HAND_BACK:
            return self.hand_back()
        if event is OperatorEvent.PAUSE:
            return self.pause()
        if event is OperatorEvent.ESTOP:
            return self.estop()
        return self.reset_estop()

    def takeover(self, source: str) -> EventResult:
        """Give control to the teleop ``source`` (after agreement or a blend); refused under e-stop."""
        if self._mode is Mode.ESTOP:
            return self._refuse("takeover refused: e-stop is latched; reset it first")
        if not source or source in RESERVED_SOURCES:
            return self._refuse(f"takeover refused: invalid teleop source {source!r}")
        if self._mode is Mode.TELEOP and self._teleop is not None and self._teleop.source == source:
            return EventResult(True, self._mode, f"{source} already in control")
        self._mode = Mode.TELEOP
        self._phase = _Phase.PENDING
        self._blend = None
        self._teleop = _TeleopTrack(source=source)
        return EventResult(True, self._mode, f"takeover by {source}: waiting for agreement or blending")

    def hand_back(self) -> EventResult:
        """Return control to the policy with a blend from the last executed command."""
        if self._mode is Mode.ESTOP:
            return self._refuse("hand-back refused: e-stop is latched; reset it first")
        if self._mode is Mode.AUTONOMOUS:
            return EventResult(True, self._mode, "policy already in control")
        self._mode = Mode.AUTONOMOUS
        self._teleop = None
        self._start_blend()
        return EventResult(True, self._mode, "handed back to the policy (blending)")

    def pause(self) -> EventResult:
        """Hold the last executed command until a takeover or hand-back."""
        if self._mode is Mode.ESTOP:
            return self._refuse("pause refused: e-stop is latched (the robot already holds)")
        self._enter_paused()
        return EventResult(True, self._mode, "paused: holding the last command")

    def estop(self) -> EventResult:
        """Emergency stop: hold, latched until :meth:`reset_estop`. Always accepted."""
        self._mode = Mode.ESTOP
        self._phase = _Phase.STEADY
        self._blend = None
        self._teleop = None
        return EventResult(True, self._mode, "e-stop latched")

    def reset_estop(self) -> EventResult:
        """Leave a latched e-stop into PAUSED; the operator then chooses takeover or hand-back."""
        if self._mode is not Mode.ESTOP:
            return self._refuse("reset refused: e-stop is not latched")
        self._enter_paused()
        return EventResult(True, self._mode, "e-stop reset: paused, holding the last command")

    # ------------------------------------------------------------------- step

    def step(self, step_input: StepInput) -> StepOutput:
        """Decide the executed command for one control step."""
        warnings: list[str] = []
        measured = self._vector(step_input.measured, "measured joint positions", warnings)
        if self._last_command is None:
            if measured is None:
                raise ArbiterInputError("no valid measured joint state yet: the arbiter has no command to hold")
            self._last_command = measured.copy()
        if self._last_stamp_ns is not None and step_input.stamp_ns <= self._last_stamp_ns:
            warnings.append(
                f"out-of-order step stamp {step_input.stamp_ns} ns (previous {self._last_stamp_ns} ns): holding"
            )
            return self._hold(step_input.stamp_ns, warnings)
        self._last_stamp_ns = step_input.stamp_ns

        if self._mode is Mode.TELEOP:
            return self._step_teleop(step_input, measured, warnings)
        if self._mode is Mode.AUTONOMOUS:
            policy = self._vector(self._fresh_policy(step_input), "policy command", warnings)
            if policy is None:
                return self._hold(step_input.stamp_ns, warnings)
            return self._execute(step_input.stamp_ns, self._approach(policy), SOURCE_POLICY, warnings)
        return self._hold(step_input.stamp_ns, warnings)

    def _fresh_policy(self, step_input: StepInput) -> np.ndarray | None:
        """The policy command, unless it is older than ``policy_timeout_s`` (a policy that fell silent)."""
        produced = step_input.policy_stamp_ns
        if produced is not None and step_input.stamp_ns - produced > self.config.policy_timeout_s * NS_PER_S:
            return None
        return step_input.policy_command

    def _step_teleop(self, step_input: StepInput, measured: np.ndarray | None, warnings: list[str]) -> StepOutput:
        track = self._teleop
        assert track is not None, "TELEOP mode always has a teleop track"
        now = step_input.stamp_ns
        if track.reference_stamp_ns is None:
            track.reference_stamp_ns = now
        self._accept_teleop(step_input.teleop, now, track, warnings)
        last_seen = track.last_stamp_ns if track.last_stamp_ns is not None else track.reference_stamp_ns
        timeout_ns = int(self.config.teleop_timeout_s * NS_PER_S)
        if now - last_seen > timeout_ns:
            warnings.append(
                f"teleop watchdog: no valid command from {track.source} for "
                f"{(now - last_seen) / NS_PER_S:.3f} s (timeout {self.config.teleop_timeout_s} s): pausing"
            )
            self._enter_paused()
            return self._hold(now, warnings)
        if self.config.require_deadman and not step_input.deadman:
            warnings.append(f"deadman released while {track.source} was in control: pausing")
            self._enter_paused()
            return self._hold(now, warnings)
        if track.target is None:
            return self._hold(now, warnings)
        if self._phase is _Phase.PENDING:
            assert self._last_command is not None
            agrees = (
                measured is not None
                and _max_abs(track.target - measured) <= self.config.agreement_tolerance
                and _max_abs(track.target - self._last_command) <= self.config.max_step_delta
            )
            if agrees:
                self._phase = _Phase.STEADY
            else:
                self._start_blend()
        return self._execute(now, self._approach(track.target), track.source, warnings)

    def _accept_teleop(self, sample: TeleopSample | None, now: int, track: _TeleopTrack, warnings: list[str]) -> None:
        if sample is None or sample.source != track.source:
            return
        if track.last_stamp_ns is not None and sample.stamp_ns == track.last_stamp_ns:
            return
        if sample.stamp_ns in track.rejected_stamps:
            return
        if track.last_stamp_ns is not None and sample.stamp_ns < track.last_stamp_ns:
            track.rejected_stamps.add(sample.stamp_ns)
            warnings.append(
                f"out-of-order teleop stamp from {sample.source}: {sample.stamp_ns} ns is older than "
                f"{track.last_stamp_ns} ns; ignored (holding the last valid teleop command)"
            )
            return
        if now - sample.stamp_ns > int(self.config.teleop_timeout_s * NS_PER_S):
            return
        positions = self._vector(sample.positions, f"teleop command from {sample.source}", warnings)
        if positions is None:
            track.rejected_stamps.add(sample.stamp_ns)
            return
        track.target = positions
        track.last_stamp_ns = sample.stamp_ns
        track.rejected_stamps.clear()

    # ---------------------------------------------------------------- helpers

    def _approach(self, goal: np.ndarray) -> np.ndarray:
        """The next command towards ``goal``: blended during a handover, always rate-limited."""
        assert self._last_command is not None
        target = goal
        if self._phase is _Phase.BLENDING and self._blend is not None:
            target = self._blend.target(goal)
        limit = self.config.max_step_delta
        command = self._last_command + np.clip(target - self._last_command, -limit, limit)
        if (
            self._phase is _Phase.BLENDING
            and self._blend is not None
            and self._blend.finished
            and _max_abs(command - goal) <= self.config.agreement_tolerance
        ):
            self._phase = _Phase.STEADY
            self._blend = None
        return command

    def _start_blend(self) -> None:
        if self._last_command is None:
            self._phase = _Phase.STEADY
            self._blend = None
            return
        self._phase = _Phase.BLENDING
        self._blend = _Blend(start=self._last_command.copy(), steps=self.config.blend_steps)

    def _enter_paused(self) -> None:
        self._mode = Mode.PAUSED
        self._phase = _Phase.STEADY
        self._blend = None
        self._teleop = None

    def _refuse(self, message: str) -> EventResult:
        self._logger.warning(message)
        return EventResult(False, self._mode, message)

    def _vector(self, values: np.ndarray | None, what: str, warnings: list[str]) -> np.ndarray | None:
        """``values`` as a float vector of length dof, or None (with a warning) when unusable."""
        if values is None:
            return None
        vector = np.asarray(values, dtype=np.float64).reshape(-1)
        if vector.shape != (self.config.dof,):
            warnings.append(f"{what} has {vector.size} values, expected {self.config.dof}: ignored, holding")
            return None
        if not np.all(np.isfinite(vector)):
            bad = [int(i) for i in np.flatnonzero(~np.isfinite(vector))]
            warnings.append(f"{what} has non-finite values at joints {bad}: ignored, holding")
            return None
        return vector

    def _hold(self, stamp_ns: int, warnings: list[str]) -> StepOutput:
        assert self._last_command is not None
        return self._emit(stamp_ns, self._last_command.copy(), SOURCE_HOLD, warnings)

    def _execute(self, stamp_ns: int, command: np.ndarray, source: str, warnings: list[str]) -> StepOutput:
        self._last_command = command
        return self._emit(stamp_ns, command.copy(), source, warnings)

    def _emit(self, stamp_ns: int, command: np.ndarray, source: str, warnings: list[str]) -> StepOutput:
        for message in warnings:
            self._logger.warning(message)
        intervention = self._mode is Mode.TELEOP and source not in RESERVED_SOURCES
        return StepOutput(
            stamp_ns=stamp_ns,
            command=command,
            mode=self._mode,
            source=source,
            intervention=intervention,
            blending=self._phase is _Phase.BLENDING and source != SOURCE_HOLD,
            warnings=tuple(warnings),
        )


def _max_abs(values: np.ndarray) -> float:
    return float(np.max(np.abs(values))) if values.size else 0.0

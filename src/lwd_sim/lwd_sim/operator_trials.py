"""Episode loops that measure the simulator and the scripted operator (used by bench/sim.py).

- ``demonstration_episodes``: whole scripted episodes, success per seed.
- ``fixed_target_episodes``: the same with an operator that ignores the instruction and always moves one
  named object, judged on the object the episode's instruction names: the fixed-instruction ablation.
- ``takeover_episode``: a poor policy drives first (a random joint-space walk, or a very noisy,
  mistake-prone operator), then the scripted operator takes over from whatever state that left
  and must finish the task.
- ``demonstration_worker`` / ``takeover_worker``: the same, as ``lwd_sim.process_fleet`` workers.

The live loop (the policy drives, the operator takes over and hands back) needs the intervention
session, so it lives above this package: ``lwd_experiment.control_step``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import Imperfection, OperatorConfig, ScriptedOperator, TakeoverDecision
from lwd_sim.process_fleet import WorkerSpec

Policy = Callable[[AlohaSimDriver], np.ndarray]
"""A policy for these loops: driver -> 14-D joint command."""
POOR_POLICIES = ("random_walk", "noisy_operator")


@dataclass
class EpisodeOutcome:
    """How one measured episode ended."""

    seed: int
    success: bool
    steps: int
    takeovers: list[TakeoverDecision] = field(default_factory=list)
    operator_steps: int = 0
    stage_at_takeover: int = 0


def demonstration_episodes(
    task: str, seeds: list[int], imperfection: Imperfection | None = None, max_steps: int | None = None
) -> list[EpisodeOutcome]:
    """Run one scripted demonstration per seed (no cameras) and report each outcome.

    ``max_steps`` defaults to the task's ``horizon`` (400 steps for the short tasks).
    """
    driver = AlohaSimDriver(task, cameras=[])
    max_steps = driver.spec.horizon if max_steps is None else max_steps
    outcomes = []
    for seed in seeds:
        operator = ScriptedOperator(OperatorConfig(imperfection=imperfection or Imperfection()), seed=seed)
        demo = operator.demonstrate(driver, seed, max_steps=max_steps)
        outcomes.append(EpisodeOutcome(seed, demo.success, demo.steps, operator_steps=demo.steps))
    driver.close()
    return outcomes


def fixed_target_episodes(
    task: str, seeds: list[int], target: str, max_steps: int | None = None
) -> list[EpisodeOutcome]:
    """Scripted episodes of a task with targets by an operator that ignores the instruction (no cameras).

    The operator plans for ``target`` on every seed (``AlohaSimDriver.reset(target=...)``: the same scene),
    while success follows the target the seed draws, which the episode's instruction names. An
    instruction-blind controller thus solves only the seeds that happen to name ``target``: chance, on
    ``pick_colour``. ``max_steps`` defaults to the task's ``horizon``.
    """
    driver = AlohaSimDriver(task, cameras=[])
    driver.spec.check_target(target)
    max_steps = driver.spec.horizon if max_steps is None else max_steps
    outcomes = []
    for seed in seeds:
        driver.reset(seed)
        named = driver.target
        driver.reset(seed, target=target)
        operator = ScriptedOperator(seed=seed)
        operator.reset(driver)
        operator.take_over(driver, "fixed_instruction")
        success, steps = False, 0
        while not success and steps < max_steps:
            driver.step(operator.command(driver))
            steps += 1
            success = driver.spec.stage(driver.contacts(), named) >= driver.max_stage
        outcomes.append(EpisodeOutcome(seed, success, steps, operator_steps=steps))
    driver.close()
    return outcomes


class RandomWalkPolicy:
    """A bad policy: a mean-reverting random walk in joint space with random gripper flips."""

    def __init__(self, rng: np.random.Generator, step_std: float = 0.04, flip_probability: float = 0.05) -> None:
        self.rng = rng
        self.step_std = step_std
        self.flip_probability = flip_probability
        self._command: np.ndarray | None = None

    def __call__(self, driver: AlohaSimDriver) -> np.ndarray:
        """Next command: drift from the previous one, pulled 5% back toward the start pose."""
        if self._command is None:
            self._command = driver.measured_qpos()
            self._home = self._command.copy()
        command = self._command + self.rng.normal(0.0, self.step_std, 14)
        command += 0.05 * (self._home - command)
        for gripper in (6, 13):
            command[gripper] = self._command[gripper]
            if self.rng.random() < self.flip_probability:
                command[gripper] = 1.0 - round(float(self._command[gripper]))
        self._command = command
        return command


def _poor_policy(kind: str, driver: AlohaSimDriver, seed: int) -> Policy:
    rng = np.random.default_rng(seed + 1_000_003)
    if kind == "random_walk":
        return RandomWalkPolicy(rng)
    if kind == "noisy_operator":
        sloppy = Imperfection(action_noise_std=0.03, mistake_probability=0.5, mistake_offset_m=0.03)
        operator = ScriptedOperator(OperatorConfig(imperfection=sloppy), seed=seed + 7)
        operator.reset(driver)
        operator.take_over(driver, "poor_policy")
        return operator.command
    raise ValueError(f"unknown poor policy {kind!r}; valid kinds are {list(POOR_POLICIES)}")


def takeover_episode(
    driver: AlohaSimDriver, seed: int, kind: str, policy_steps: int, horizon: int = 400
) -> EpisodeOutcome:
    """A poor policy drives for ``policy_steps``; then the operator takes over and keeps control."""
    driver.reset(seed)
    policy = _poor_policy(kind, driver, seed)
    for _ in range(policy_steps):
        driver.step(policy(driver))
    stage = driver.stage_reward
    operator = ScriptedOperator(seed=seed)
    operator.reset(driver)
    decision = operator.take_over(driver, f"after_{kind}")
    success = driver.success
    steps = 0
    while not success and steps < horizon:
        driver.step(operator.command(driver))
        steps += 1
        success = driver.success
    return EpisodeOutcome(seed, success, policy_steps + steps, [decision], steps, stage)


def demonstration_worker(
    spec: WorkerSpec, task: str, episodes: int, imperfect: bool = False, max_steps: int | None = None
) -> list[EpisodeOutcome]:
    """Fleet worker: ``episodes`` scripted demonstrations on this robot's own seed stream."""
    imperfection = Imperfection.human() if imperfect else Imperfection()
    return demonstration_episodes(task, spec.episode_seeds(episodes), imperfection, max_steps)


def takeover_worker(spec: WorkerSpec, episodes: int, kind: str, horizon: int = 400) -> list[EpisodeOutcome]:
    """Fleet worker: ``episodes`` transfer_cube takeovers after 30-200 steps of a ``kind`` poor policy."""
    driver = AlohaSimDriver("transfer_cube", cameras=[])
    rng = spec.rng()
    outcomes = [
        takeover_episode(driver, seed, kind, int(rng.integers(30, 200)), horizon)
        for seed in spec.episode_seeds(episodes)
    ]
    driver.close()
    return outcomes

"""One control step of a simulated robot with an operator standing by, written once.

The step every loop of the simulated fleet runs (deployment, demonstration and evaluation episodes
of ``SimRobot``, the operator measurements of ``bench/sim.py``, and the tests): the operator may
take over, the intervention session arbitrates between the policy's and the operator's command, the
robot executes the result, and an operator in control hands back once its sub-goal is reached. The
session hears every takeover and hand-back, so its statistics and the recorded bag see the same
episode a robot with a human at the teleop would produce.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from lwd_interfaces.robot import Observation
from lwd_intervention.arbiter import StepInput, StepOutput, TeleopSample
from lwd_intervention.events import OperatorEvent
from lwd_intervention.modes import SOURCE_SCRIPTED_OPERATOR as OPERATOR_SOURCE
from lwd_intervention.parameters import InterventionParameters, parameters_from_mapping
from lwd_intervention.session import InterventionSession
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import ScriptedOperator
from lwd_sim.operator_trials import EpisodeOutcome
from lwd_sim.replay import ReplayOperator

CONTROL_PERIOD_NS = 20_000_000


def operator_parameters(max_step_delta: float) -> InterventionParameters:
    """The intervention settings of a simulated robot: the scripted operator is the teleop source, the
    simulator labels each episode, and episodes start when the runner says so."""
    return parameters_from_mapping(
        {
            "teleop_source": OPERATOR_SOURCE,
            "auto_label": True,
            "auto_start_episodes": False,
            "max_step_delta": max_step_delta,
        }
    )


def control_step(
    driver: AlohaSimDriver,
    operator: ScriptedOperator | ReplayOperator,
    session: InterventionSession,
    observation: Observation,
    policy_command: np.ndarray | None,
    stamp_ns: int,
    supervise: bool,
    before_motion: Callable[[StepOutput], None] | None = None,
) -> tuple[Observation, StepOutput]:
    """Run one control step at ``stamp_ns``; returns the new observation and the session's decision.

    ``supervise``: the operator watches the policy, takes over on its triggers and hands back after
    each sub-goal (deployment); without it the operator keeps whatever control it has (it drives a
    demonstration from the start and never touches an evaluation; a ``ReplayOperator`` only drives).
    ``before_motion`` sees the decision before the robot moves (the recorder).
    """
    if supervise and not operator.in_control and operator.decide(driver, policy_command):
        session.handle(OperatorEvent.TAKEOVER, OPERATOR_SOURCE, stamp_ns)
    teleop = TeleopSample(operator.command(driver), stamp_ns, OPERATOR_SOURCE) if operator.in_control else None
    output = session.step(StepInput(stamp_ns, observation.qpos, policy_command, teleop))
    if before_motion is not None:
        before_motion(output)
    observation = driver.step(output.command)
    if supervise and operator.in_control and operator.wants_hand_back(driver):
        operator.hand_back(driver)
        session.handle(OperatorEvent.HAND_BACK, OPERATOR_SOURCE, stamp_ns)
    return observation, output


def assisted_episode(
    driver: AlohaSimDriver,
    operator: ScriptedOperator,
    policy: Callable[[AlohaSimDriver], np.ndarray],
    seed: int,
    max_steps: int = 600,
    max_step_delta: float = 0.1,
) -> EpisodeOutcome:
    """A deployment episode without a learned policy or a recorder: ``policy`` drives, the operator
    supervises, until success or ``max_steps``."""
    observation = driver.reset(seed)
    operator.reset(driver)
    session = operator_parameters(max_step_delta).session()
    stamp = observation.stamp_ns
    session.start_episode(stamp)
    steps = 0
    while steps < max_steps and not driver.success:
        stamp += CONTROL_PERIOD_NS
        observation, _ = control_step(driver, operator, session, observation, policy(driver), stamp, supervise=True)
        steps += 1
    operator_steps = session.stats.intervention_steps
    return EpisodeOutcome(seed, driver.success, steps, list(operator.takeovers), operator_steps)


def demonstration_commands(task: str, seed: int, max_steps: int, max_step_delta: float = 0.1) -> np.ndarray:
    """The commands ``[T, 14]`` a simulated robot executes when the scripted operator demonstrates ``task`` on
    ``seed``'s scene, through the intervention session's limits, until success or ``max_steps`` (physics only:
    nothing is rendered or recorded). A ``ReplayOperator`` sends them on another scene."""
    driver = AlohaSimDriver(task, cameras=())
    try:
        observation = driver.reset(seed)
        operator = ScriptedOperator(seed=seed)
        operator.reset(driver)
        session = operator_parameters(max_step_delta).session()
        stamp = observation.stamp_ns
        session.start_episode(stamp)
        operator.take_over(driver, "demonstration")
        session.handle(OperatorEvent.TAKEOVER, OPERATOR_SOURCE, stamp)
        commands = []
        while len(commands) < max_steps and not driver.success:
            stamp += CONTROL_PERIOD_NS
            observation, output = control_step(driver, operator, session, observation, None, stamp, supervise=False)
            commands.append(output.command)
    finally:
        driver.close()
    return np.asarray(commands, dtype=np.float64).reshape(-1, driver.description.dof)

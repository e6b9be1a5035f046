"""One simulated robot of the fleet, wired in-process the way a composed ROS 2 container would be.

Data flows one way: driver → policy runtime → intervention session (with the scripted
operator as the teleop source) → driver, with the recorder listening to every step;
spool → bag bridge → fleet store; store channel → watcher → policy hot swap. Each
core is the one the ROS nodes host; this class only converts and wires. Like a
``bridge_node``, a robot accepts only policies signed by a release key it trusts
(``trusted_keys``, ``revoked_keys``), or also unsigned ones with ``allow_unsigned``.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lwd_fleet.canary import CANARY_CHANNEL, robot_channel
from lwd_fleet.channel_watcher import ChannelWatcher, PolicyRelease
from lwd_fleet.errors import StoreError
from lwd_fleet.signing import ReleaseTrust
from lwd_fleet.store import FleetStore
from lwd_interfaces import lwd_typestore, topics
from lwd_interfaces.camera_projection import CameraCalibration
from lwd_interfaces.messages import joint_state, policy_version, pose_array, rgb8_image
from lwd_interfaces.robot import ConfigError, Observation
from lwd_interfaces.robots import ALOHA_SIM
from lwd_intervention.arbiter import StepOutput
from lwd_intervention.events import OperatorEvent
from lwd_intervention.labels import new_episode_id
from lwd_intervention.messages import episode_event_msg, intervention_state_msg, reward_label_msg
from lwd_intervention.session import EpisodeTemplate
from lwd_logger.bridge import BagBridge
from lwd_logger.recorder import EpisodeRecorder
from lwd_logger.recovery import recover_spool
from lwd_logger.spool import Spool
from lwd_logger.writer import RosbagsWriter
from lwd_policy.checkpoint import CheckpointError
from lwd_policy.inference import PolicyObservation
from lwd_policy.language import InstructionEncoder
from lwd_policy.messages import action_chunk_msg
from lwd_policy.runtime import InferenceRuntime, RuntimeConfig
from lwd_policy.safety import robot_limits
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import Imperfection, OperatorConfig, ScriptedOperator, TakeoverTriggers
from lwd_sim.process_fleet import ProcessFleet
from lwd_sim.replay import ReplayOperator
from lwd_sim.tasks import INSTRUCTION_SETS

from lwd_experiment.control_step import (
    CONTROL_PERIOD_NS,
    OPERATOR_SOURCE,
    control_step,
    demonstration_commands,
    operator_parameters,
)

LOG = logging.getLogger(__name__)
MODES = ("demonstration", "replay", "deployment", "evaluation")
"""demonstration: the operator drives the whole episode; replay: the operator replays the demonstration of
another seed's scene open loop (``lwd_sim.replay``), recorded as a demonstration that almost always fails, for its
perception labels; deployment: the policy drives and the operator takes over on its triggers; evaluation: the
policy alone, not recorded."""
OPERATOR_DRIVEN = ("demonstration", "replay")
"""The modes in which the operator drives from the first step and no policy runs."""


def check_episode_kind(mode: str, instructions: str, replay_of: int | None = None) -> None:
    """Refuse a mode outside MODES or an instruction set outside INSTRUCTION_SETS, held-out instructions in any
    mode but evaluation (a recorded episode never carries one, so the policy never trains on them), and a replay
    without the seed whose demonstration it replays, or that seed in any other mode."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if (mode == "replay") != (replay_of is not None):
        raise ValueError(f"replay_of names the replayed demonstration's seed, for replays only (mode {mode!r})")
    if instructions not in INSTRUCTION_SETS:
        raise ValueError(f"instructions must be one of {INSTRUCTION_SETS}, got {instructions!r}")
    if instructions != "trained" and mode != "evaluation":
        raise ValueError(f"{instructions} instructions are for evaluation only, not {mode} episodes")


class RobotError(RuntimeError):
    """The robot cannot run an episode (no policy on the channel, spool full, store unreachable...)."""


@dataclass(frozen=True)
class RobotSettings:
    """How one simulated robot runs: where its store is, whom it trusts, what it sees, how its operator behaves.

    ``trusted_keys``, ``revoked_keys`` and ``allow_unsigned`` are the ``bridge_node`` parameters of the same
    names (:class:`lwd_fleet.signing.ReleaseTrust`). ``max_step_delta`` bounds every executed command change
    [rad/step]. The robot follows ``channel``, or ``canary_channel`` when ``canary_share`` makes it a canary
    (:func:`lwd_fleet.canary.follows_canary`).
    """

    robot_id: str
    store_url: str
    work_dir: Path
    channel: str = "stable"
    trusted_keys: tuple[str, ...] = ()
    revoked_keys: str = ""
    allow_unsigned: bool = False
    canary_channel: str = CANARY_CHANNEL
    canary_share: float = 0.0
    tasks: tuple[str, ...] = ("transfer_cube", "insertion")
    cameras: tuple[str, ...] = ("top",)
    image_height: int = 96
    image_width: int = 128
    max_steps: int = 300
    task_max_steps: tuple[tuple[str, int], ...] = ()
    """(task, steps) pairs: the step budget of that task's episodes, in place of ``max_steps``
    (``DemoPreset.max_steps_for`` gives a long task a longer one)."""
    record: bool = True
    human_like_operator: bool = True
    """Live takeovers get reaction delay, noise and mistakes; demonstrations stay clean (curated)."""
    stall_seconds: float = 2.0
    drop_seconds: float = TakeoverTriggers.drop_seconds
    patience: int = 3
    max_step_delta: float = 0.1
    low_water: int = 1
    """Refill the policy's chunk queue when it covers this many steps or fewer. 1 executes each chunk
    almost open-loop; re-planning every step with temporal ensembling measured far worse here
    (BENCHMARKS.md, "execution of chunks")."""
    fleet_noise_scale: float = 0.0
    """The policy samples from ``fleet_noise_scale`` × N(0, I) in deployment episodes, so the fleet can explore
    (``RuntimeConfig.noise_scale``); evaluation episodes always sample deterministically (noise 0)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.fleet_noise_scale <= 1.0:
            raise ValueError(f"fleet_noise_scale must be in [0, 1], got {self.fleet_noise_scale}")

    def max_steps_for(self, task: str) -> int:
        """The step budget of an episode of ``task``: its ``task_max_steps`` entry, else ``max_steps``."""
        return dict(self.task_max_steps).get(task, self.max_steps)


@dataclass(frozen=True)
class EpisodeJob:
    """One episode for a robot of the fleet to run: task, seed, mode (see MODES), whether to keep its frames, the
    instruction set its paraphrase comes from (``lwd_sim.tasks.INSTRUCTION_SETS``) and, for a replay, the seed
    whose demonstration it replays."""

    task: str
    seed: int
    mode: str = "deployment"
    capture: bool = False
    instructions: str = "trained"
    replay_of: int | None = None

    def __post_init__(self) -> None:
        check_episode_kind(self.mode, self.instructions, self.replay_of)


@dataclass
class EpisodeSummary:
    """What one episode did, for progress lines and the report."""

    robot_id: str
    task: str
    seed: int
    policy_version: str
    success: bool
    steps: int
    interventions: int = 0
    intervention_steps: int = 0
    takeover_reasons: list[str] = field(default_factory=list)
    best_stage: int = 0
    wall_s: float = 0.0
    started_unix: float = 0.0
    """When the robot started the episode, on the policy it announced (Unix time) [s]."""
    ended_unix: float = 0.0
    """When the episode ended (Unix time) [s]."""
    bag: str = ""
    mode: str = "deployment"
    errors: list[str] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)


class SimRobot:
    """A MuJoCo ALOHA robot with the full LWD robot stack on top of it."""

    def __init__(self, settings: RobotSettings, encoder: InstructionEncoder | None = None) -> None:
        """Wire the robot; ReleaseKeyError (before anything is created) when its release keys are unusable."""
        trust = ReleaseTrust.from_files(settings.trusted_keys, settings.revoked_keys, settings.allow_unsigned)
        log = LOG.warning if trust.allow_unsigned else LOG.info
        log("%s: policy releases: %s", settings.robot_id, trust.describe())
        self.settings = settings
        self.typestore = lwd_typestore()
        self.drivers = {
            task: AlohaSimDriver(task, settings.cameras, settings.image_height, settings.image_width)
            for task in settings.tasks
        }
        self.store = FleetStore(settings.store_url)
        self.spool = Spool(settings.work_dir / "spool")
        recover_spool(self.spool, self.typestore)
        self.recorder = EpisodeRecorder(self.spool, lambda: RosbagsWriter(self.typestore), self.typestore)
        self.bridge = BagBridge(self.spool, self.store)
        channel = robot_channel(settings.robot_id, settings.channel, settings.canary_channel, settings.canary_share)
        self.watcher = ChannelWatcher(self.store, channel, settings.work_dir / "policy_cache", trust=trust)
        self.encoder = encoder
        self.runtime: InferenceRuntime | None = None
        self.release: PolicyRelease | None = None
        self.limits = robot_limits(ALOHA_SIM, settings.max_step_delta, settings.max_step_delta)
        self.intervention_parameters = operator_parameters(settings.max_step_delta)
        self._clock_ns = time.time_ns()
        self._episodes = 0

    def refresh_policy(self) -> str:
        """Poll the channel; hot-swap a new verified version in. Returns the version now serving."""
        try:
            release = self.watcher.poll()
        except (StoreError, OSError, ValueError) as error:
            LOG.error("%s: channel %s unusable, keeping the current policy: %s", self.settings.robot_id,
                      self.watcher.channel, error)  # fmt: skip
            release = None
        if release is not None:
            if self.runtime is None:
                config = RuntimeConfig(mode="lockstep", low_water=self.settings.low_water, seed=0)
                try:
                    self.runtime = InferenceRuntime.from_checkpoint(
                        release.folder, self.limits, config, self.encoder, ALOHA_SIM
                    )
                except CheckpointError as error:
                    raise RobotError(f"first policy {release.version} refused, nothing to serve: {error}") from error
                self.encoder = self.runtime.encoder
                self.release = release
            else:
                report = self.runtime.offer_checkpoint(release.folder).result()
                if report.accepted:
                    self.release = release
                else:
                    LOG.error("%s: refused policy %s: %s", self.settings.robot_id, release.version, report.reason)
        if self.runtime is None:
            raise RobotError(f"channel {self.watcher.channel!r} serves no usable policy yet")
        return self.runtime.version

    def run(self, job: EpisodeJob) -> EpisodeSummary:
        """Run one job sent by the fleet (see :class:`lwd_sim.process_fleet.ProcessFleet`)."""
        return self.run_episode(job.task, job.seed, job.mode, job.capture, job.instructions, job.replay_of)

    def run_episode(
        self,
        task: str,
        seed: int,
        mode: str = "deployment",
        capture: bool = False,
        instructions: str = "trained",
        replay_of: int | None = None,
    ) -> EpisodeSummary:
        """Run one episode of ``task`` from ``seed`` in ``mode`` (see MODES); ``capture`` keeps the camera frames.

        Demonstration, replay and deployment episodes are recorded and uploaded (when ``settings.record``);
        evaluation episodes run the policy alone and are not recorded, and only they may take their
        instruction from the ``held_out`` set. The policy samples with ``settings.fleet_noise_scale`` in
        deployment episodes, its noise seeded by ``seed``, and deterministically in evaluation episodes.
        A replay sends the scripted demonstration of ``replay_of``'s scene and lasts as long as it.
        """
        check_episode_kind(mode, instructions, replay_of)
        started = time.monotonic()
        record = self.settings.record and mode != "evaluation"
        version = "" if mode in OPERATOR_DRIVEN else self.refresh_policy()
        budget = self.settings.max_steps_for(task)
        driver = self.drivers[task]
        observation = driver.reset(seed, instructions)
        if replay_of is None:
            operator = self._operator(seed, human_like=self.settings.human_like_operator and mode == "deployment")
            operator.reset(driver)
        else:
            operator = ReplayOperator(demonstration_commands(task, replay_of, budget, self.settings.max_step_delta))
            budget = len(operator.commands)
        if self.runtime is not None:
            self.runtime.reset(self.settings.fleet_noise_scale if mode == "deployment" else 0.0, seed)
        summary = EpisodeSummary(self.settings.robot_id, task, seed, version, False, 0, mode=mode)
        summary.started_unix = time.time()
        kind = "demonstration" if mode in OPERATOR_DRIVEN else "deployment"
        stamp = self._open_session(driver, summary, record, kind)
        if mode == "demonstration":
            operator.take_over(driver, "demonstration")
        if mode in OPERATOR_DRIVEN:
            self.session.handle(OperatorEvent.TAKEOVER, OPERATOR_SOURCE, stamp)
        elif record:
            self._record(topics.POLICY_VERSION, self._version_message(stamp), stamp)
        stamp = self._drive(driver, operator, observation, summary, stamp, record, capture, budget)
        self._close_session(summary, operator, stamp, record, kind)
        summary.wall_s = time.monotonic() - started
        summary.ended_unix = time.time()
        return summary

    def _open_session(self, driver: AlohaSimDriver, summary: EpisodeSummary, record: bool, kind: str) -> int:
        """A fresh session with the episode started; returns the episode's first stamp.

        A fresh arbiter per episode: its hold and rate limits start from the reset robot, in AUTONOMOUS.
        """
        self.session = self.intervention_parameters.session()
        self.session.template = EpisodeTemplate(self.settings.robot_id, summary.task, driver.instruction)
        self.session.policy_version = summary.policy_version
        stamp = self._next_stamp()
        self._episodes += 1
        episode_id = new_episode_id(self.settings.robot_id, stamp, self._episodes)
        self._publish(self.session.start_episode(stamp, episode_id).records, stamp, record, kind)
        return stamp

    def _drive(
        self,
        driver: AlohaSimDriver,
        operator: ScriptedOperator | ReplayOperator,
        observation: Observation,
        summary: EpisodeSummary,
        stamp: int,
        record: bool,
        capture: bool,
        budget: int,
    ) -> int:
        """Control steps until success or ``budget`` steps; returns the last step's stamp."""
        for step in range(budget):
            if capture:
                summary.frames.append(observation.images[self.settings.cameras[0]])
            policy_command = None
            if summary.mode not in OPERATOR_DRIVEN:
                policy_command = self._policy_command(driver, observation, stamp, record)
            recorder = (
                functools.partial(self._record_step, driver, observation, policy_command, stamp) if record else None
            )
            supervise = summary.mode == "deployment"
            observation, _ = control_step(
                driver, operator, self.session, observation, policy_command, stamp, supervise, recorder
            )
            summary.steps = step + 1
            stage = driver.stage_reward  # one contact scan per step, for progress and success alike
            summary.best_stage = max(summary.best_stage, stage)
            summary.success = stage >= driver.max_stage
            if summary.success:
                break
            stamp = self._next_stamp()
        return stamp

    def _policy_command(self, driver: AlohaSimDriver, observation: Observation, stamp: int, record: bool) -> np.ndarray:
        """The serving policy's command for this step; the chunks it starts are recorded."""
        assert self.runtime is not None
        now = stamp * 1e-9
        seen = PolicyObservation(
            now, observation.qpos, observation.images, driver.instruction, observation.object_poses
        )
        command = self.runtime.step(seen, now)
        for chunk in command.new_chunks if record else ():
            self._record(topics.ACTION_CHUNK, action_chunk_msg(chunk, CONTROL_PERIOD_NS * 1e-9, stamp), stamp)
        return command.command

    def _close_session(
        self, summary: EpisodeSummary, operator: ScriptedOperator | ReplayOperator, stamp: int, record: bool, kind: str
    ) -> None:
        """Label the episode from the simulator's ground truth, close it, and upload it when recorded."""
        stats = self.session.stats
        if stats is not None and summary.mode == "deployment":
            summary.interventions = stats.interventions
            summary.intervention_steps = stats.intervention_steps
            summary.takeover_reasons = [decision.reason for decision in operator.takeovers]
        end = self.session.end_with_ground_truth(summary.success, stamp)
        if not end.accepted:
            raise RobotError(f"{self.settings.robot_id}: episode could not be closed: {end.message}")
        summary.bag = self._publish(end.records, stamp, record, kind)
        if record:
            self._upload(summary)

    def close(self) -> None:
        """Release the renderers."""
        for driver in self.drivers.values():
            driver.close()

    def _operator(self, seed: int, human_like: bool) -> ScriptedOperator:
        imperfection = Imperfection.human() if human_like else Imperfection()
        settings = self.settings
        triggers = TakeoverTriggers(
            stall_seconds=settings.stall_seconds, drop_seconds=settings.drop_seconds, patience=settings.patience
        )
        return ScriptedOperator(OperatorConfig(triggers=triggers, imperfection=imperfection), seed=seed)

    def _next_stamp(self) -> int:
        self._clock_ns += CONTROL_PERIOD_NS
        return self._clock_ns

    def _upload(self, summary: EpisodeSummary) -> None:
        try:
            self.bridge.upload_pending()
        except (StoreError, OSError) as error:
            message = f"upload failed, episodes stay in the spool for the next try: {error}"
            LOG.error("%s: %s", self.settings.robot_id, message)
            summary.errors.append(message)

    def _publish(self, records: tuple, stamp: int, record: bool, kind: str) -> str:
        """Hand session records (events, labels) to the recorder as the intervention node would publish them."""
        committed = ""
        for item in records if record else ():
            if hasattr(item, "kind"):
                message = episode_event_msg(item)
                folder = self.recorder.record_event(message, message, stamp, tuple(self.settings.cameras), kind)
            else:
                message = reward_label_msg(item)
                folder = self.recorder.record_reward(message, message, stamp)
            committed = str(folder or committed)
        return committed

    def _record(self, topic: str, message: object, stamp: int) -> None:
        self.recorder.record(topic, message.__msgtype__, message, stamp)

    def _record_step(
        self,
        driver: AlohaSimDriver,
        observation: Observation,
        policy_command: np.ndarray | None,
        stamp: int,
        output: StepOutput,
    ) -> None:
        """Record what the robot saw and did at one step, as the recorder node would receive it."""
        names = driver.joint_names
        self._record(topics.JOINT_STATES, joint_state(stamp, names, observation.qpos, observation.qvel), stamp)
        for camera, pixels in observation.images.items():
            self._record(topics.camera_topic(camera), rgb8_image(stamp, camera, pixels), stamp)
        if len(observation.object_poses):
            self._record(topics.OBJECT_POSES, pose_array(stamp, observation.object_poses), stamp)
        if policy_command is not None:
            self._record(topics.POLICY_COMMAND, joint_state(stamp, names, policy_command), stamp)
        self._record(topics.EXECUTED_COMMAND, joint_state(stamp, names, output.command), stamp)
        self._record(topics.INTERVENTION_STATE, intervention_state_msg(output), stamp)

    def _version_message(self, stamp: int) -> object:
        release = self.release
        assert release is not None
        return policy_version(stamp, release.version, release.uri, release.sha256, release.channel)


def start_sim_robot(settings: RobotSettings) -> SimRobot:
    """Build a robot inside its fleet process: log lines name the robot, and torch uses one thread, so
    robots sharing a machine do not oversubscribe its cores."""
    import torch

    logging.basicConfig(level=logging.WARNING, format=f"%(levelname)s {settings.robot_id}: %(message)s")
    torch.set_num_threads(1)
    return SimRobot(settings)


def fleet_calibration(settings: RobotSettings) -> CameraCalibration:
    """The projections of the cameras a robot of ``settings`` records, the same in every one of its tasks' scenes
    (a task whose cameras sit elsewhere raises ``ConfigError``): BC's image-space labels."""
    calibrations = []
    for task in settings.tasks:
        driver = AlohaSimDriver(task, settings.cameras, settings.image_height, settings.image_width)
        try:
            calibrations.append((task, driver.calibration()))
        finally:
            driver.close()
    first_task, first = calibrations[0]
    for task, calibration in calibrations[1:]:
        for name, projection in calibration.cameras.items():
            if not np.allclose(projection.matrix, first.cameras[name].matrix):
                raise ConfigError(f"camera {name!r} sits elsewhere in {task} than in {first_task}")
    return first


def sim_robot_fleet(settings: list[RobotSettings], max_restarts: int = 10) -> ProcessFleet:
    """One process per robot of ``settings``, each hosting a :class:`SimRobot` that runs ``EpisodeJob``s.

    Robots meet only through the fleet store, so new policy versions are hot-swapped into running robots
    between episodes. A robot that dies is reported and restarted; its unfinished episode stays in its
    spool as a partial bag, which recovery marks incomplete: it is never used as a complete episode.
    """
    return ProcessFleet(start_sim_robot, settings, [robot.robot_id for robot in settings], max_restarts)

"""The policy's inference runtime: chunk queue, blending, safety and weight hot swap.

The control loop calls ``step(observation, now)`` once per control period and
always gets a command back immediately. Around it:

- **Chunk queue.** When the blended queue covers ``low_water`` steps or fewer,
  the current observation is submitted for inference. In ``realtime`` mode a
  worker thread computes the chunk while the loop keeps emitting from the
  queue; in ``lockstep`` mode (simulated robots, whose time runs faster than
  wall time) the chunk is computed inside ``step`` so runs are deterministic
  under a seed. Queue, blending and safety logic are the same in both modes.
- **Blending.** Overlapping chunks are temporally ensembled (``ChunkBlender``).
- **Safety** on every emitted command (``SafetyFilter``): NaN/inf → hold,
  joint-limit clamp, per-step rate limit. The loop also holds on a stale
  observation, and a chunk that missed its deadline is dropped.
- **Hot swap.** ``offer_checkpoint(folder)`` verifies and loads new weights off
  the control path; the next inference uses them, so the swap happens between
  chunks. A bad checkpoint is rejected with a logged reason and the old
  weights keep serving; given the robot description (``robot``), so is one
  whose normalization statistics do not suit the robot's joint limits.
  Every chunk and command carries its policy version.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import torch
from lwd_interfaces.robot import RobotDescription

from lwd_policy.blending import Chunk, ChunkBlender
from lwd_policy.checkpoint import CheckpointError, load_checkpoint
from lwd_policy.inference import ChunkPredictor, PolicyObservation
from lwd_policy.language import InstructionEncoder
from lwd_policy.safety import SafetyFilter, SafetyLimits

LOG = logging.getLogger(__name__)
MODES = ("realtime", "lockstep")


class RuntimeConfigError(ValueError):
    """Runtime settings are out of range or inconsistent with the policy."""


class CommandStatus(str, enum.Enum):
    """Where a step's command came from."""

    POLICY = "policy"
    HOLD_WAITING = "hold_waiting"
    HOLD_STALE = "hold_stale"
    HOLD_STARVED = "hold_starved"
    HOLD_NONFINITE = "hold_nonfinite"


@dataclass(frozen=True)
class RuntimeConfig:
    """Runtime settings.

    ``low_water``: refill when the queue covers this many steps or fewer; ``stale_after``: an observation
    older than this [s] makes the step hold; ``max_latency``: a chunk slower than this [s] is dropped
    (missed deadline); ``blend_decay`` / ``blend_ramp``: temporal ensembling; ``torch_threads``: intra-op
    threads set at start in realtime mode; ``seed``: the sampling noise generator's seed; ``noise_scale``: the
    flow's starting noise is ``noise_scale`` × N(0, I). 0 (the default) makes the policy deterministic: the
    built-in VLA succeeds far more often that way than when it samples with full noise (BENCHMARKS.md,
    "Current default preset", item 1).
    """

    mode: str = "realtime"
    low_water: int = 14
    stale_after: float = 0.1
    max_latency: float = 0.25
    blend_decay: float = 0.1
    blend_ramp: int = 3
    torch_threads: int = 1
    seed: int = 0
    noise_scale: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise RuntimeConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.low_water < 1:
            raise RuntimeConfigError(f"low_water must be >= 1, got {self.low_water}")
        if not self.stale_after > 0 or not self.max_latency > 0:
            raise RuntimeConfigError("stale_after and max_latency must be > 0 seconds")
        if self.torch_threads < 1:
            raise RuntimeConfigError(f"torch_threads must be >= 1, got {self.torch_threads}")
        if not 0.0 <= self.noise_scale <= 1.0:
            raise RuntimeConfigError(f"noise_scale must be in [0, 1], got {self.noise_scale}")


@dataclass(frozen=True)
class StepCommand:
    """The runtime's answer for one control step (robot units), with its provenance.

    ``chunk_id`` / ``inference_latency`` describe the newest chunk behind the command (-1 / NaN on a hold
    without one); ``new_chunks`` are the chunks that entered the queue during this step.
    """

    step: int
    stamp: float
    command: np.ndarray
    status: CommandStatus
    policy_version: str
    chunk_id: int
    inference_latency: float
    clamped: bool
    rate_limited: bool
    new_chunks: tuple[Chunk, ...]

    @property
    def from_policy(self) -> bool:
        """True when the command follows the policy (possibly clamped), False on a hold."""
        return self.status is CommandStatus.POLICY


@dataclass(frozen=True)
class SwapReport:
    """Result of ``offer_checkpoint``: accepted or not, and why."""

    folder: str
    accepted: bool
    version: str
    reason: str
    digest: str = ""


@dataclass
class RuntimeCounters:
    """Running totals, for logs and benchmarks."""

    steps: int = 0
    policy_steps: int = 0
    held_waiting: int = 0
    held_stale: int = 0
    held_starved: int = 0
    held_nonfinite: int = 0
    clamped: int = 0
    rate_limited: int = 0
    chunks: int = 0
    missed_deadlines: int = 0
    inference_errors: int = 0
    swaps: int = 0
    rejected_checkpoints: int = 0


@dataclass(frozen=True)
class _Request:
    observation: PolicyObservation
    step: int
    submitted: float


class InferenceRuntime:
    """Chunk queue + blending + safety + hot swap around a ``ChunkPredictor`` (see module docstring)."""

    def __init__(
        self,
        predictor: ChunkPredictor,
        limits: SafetyLimits,
        config: RuntimeConfig | None = None,
        robot: RobotDescription | None = None,
    ) -> None:
        """Serve ``predictor``'s chunks within ``limits``; with ``robot``, a checkpoint offered later must also
        have normalization statistics that suit that robot's joint limits (``load_checkpoint(robot=...)``)."""
        self.config = config or RuntimeConfig()
        self.robot = robot
        if limits.dim != predictor.config.action_dim:
            raise RuntimeConfigError(
                f"safety limits cover {limits.dim} joints, policy outputs {predictor.config.action_dim}"
            )
        if self.config.low_water >= predictor.config.horizon:
            raise RuntimeConfigError(
                f"low_water ({self.config.low_water}) must be below the chunk horizon ({predictor.config.horizon})"
            )
        self.policy_config = predictor.config
        self.safety = SafetyFilter(limits)
        self.blender = ChunkBlender(self.config.blend_decay, self.config.blend_ramp)
        self.counters = RuntimeCounters()
        self._predictor = predictor
        self._pending: ChunkPredictor | None = None
        self._generator = torch.Generator().manual_seed(self.config.seed)
        self._lock = threading.Condition()
        self._request: _Request | None = None
        self._in_flight = False
        self._ready: list[Chunk] = []
        self._stopping = False
        self._worker: threading.Thread | None = None
        self._loader: ThreadPoolExecutor | None = None
        self._step = 0
        self._chunk_counter = 0
        self._previous: np.ndarray | None = None
        self._last_chunk: Chunk | None = None
        self._started_policy = False
        self._episode_start = 0

    @property
    def version(self) -> str:
        """Version of the weights the next inference will use (a pending swap included)."""
        with self._lock:
            return (self._pending or self._predictor).version

    @classmethod
    def from_checkpoint(
        cls,
        folder: str | os.PathLike[str],
        limits: SafetyLimits,
        config: RuntimeConfig | None = None,
        encoder: InstructionEncoder | None = None,
        robot: RobotDescription | None = None,
    ) -> InferenceRuntime:
        """Load and verify a checkpoint (its statistics against ``robot``'s joint limits when given), then wrap it;
        the encoder defaults to the config's language model."""
        checkpoint = load_checkpoint(folder, robot=robot)
        if encoder is None:
            model_path = checkpoint.config.language_model or None
            encoder = InstructionEncoder(model_path, dim=checkpoint.config.language_dim)
        return cls(ChunkPredictor(checkpoint, encoder), limits, config, robot)

    def warm_up(self, instruction: str) -> float:
        """Run one inference on a blank observation and return its seconds; the runtime's state is untouched.

        It loads the sentence model and caches ``instruction``'s embedding, and takes torch's
        first-call cost, so that a host calls it before serving (``policy_node`` at configure):
        otherwise the first real chunk pays seconds for both and misses its deadline.
        """
        predictor = self._predictor
        start = time.perf_counter()
        predictor.predict([predictor.blank_observation(instruction)], torch.Generator().manual_seed(0), 0.0)
        return time.perf_counter() - start

    @property
    def digest(self) -> str:
        """Manifest sha256 of the weights the next inference will use."""
        with self._lock:
            return (self._pending or self._predictor).checkpoint.digest

    @property
    def encoder(self) -> InstructionEncoder:
        """The instruction encoder shared by every policy this runtime serves."""
        return self._predictor.encoder

    def start(self) -> None:
        """Start the worker and loader threads (realtime mode); lockstep mode needs no threads."""
        if self.config.mode != "realtime" or self._worker is not None:
            return
        torch.set_num_threads(self.config.torch_threads)
        self._stopping = False
        self._worker = threading.Thread(target=self._worker_loop, name="lwd-policy-inference", daemon=True)
        self._worker.start()
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lwd-policy-loader")

    def stop(self) -> None:
        """Stop the threads, waiting for an in-flight inference or load to finish."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        if self._loader is not None:
            self._loader.shutdown(wait=True)
            self._loader = None
        with self._lock:
            self._request = None
            self._in_flight = False

    def __enter__(self) -> InferenceRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def step(self, observation: PolicyObservation, now: float) -> StepCommand:
        """The command for the current control step; never waits for inference in realtime mode.

        ``now`` is the control step's time [s] on the clock of ``observation.stamp``.
        """
        step = self._step
        self._step += 1
        new_chunks = self._collect_ready(step)
        stale = now - observation.stamp > self.config.stale_after
        if not stale and self.blender.remaining(step) <= self.config.low_water:
            new_chunks += self._request_chunk(observation, step)
        blended = None if stale else self.blender.action_at(step)
        previous = self._previous if self._previous is not None else np.asarray(observation.qpos, dtype=np.float64)
        if stale:
            status = CommandStatus.HOLD_STALE
        elif blended is None:
            status = CommandStatus.HOLD_STARVED if self._started_policy else CommandStatus.HOLD_WAITING
        else:
            status = CommandStatus.POLICY
        proposed = blended.action if blended is not None else previous
        outcome = self.safety.apply(proposed, previous)
        if outcome.nonfinite:
            status = CommandStatus.HOLD_NONFINITE
        if status is CommandStatus.POLICY:
            self._started_policy = True
        chunk = blended.chunk if blended is not None else self._last_chunk
        self._previous = outcome.command
        self._count(status, outcome.clamped, outcome.rate_limited)
        return StepCommand(
            step=step,
            stamp=now,
            command=outcome.command.copy(),
            status=status,
            policy_version=chunk.policy_version if chunk is not None else self.version,
            chunk_id=chunk.chunk_id if chunk is not None else -1,
            inference_latency=chunk.inference_latency if chunk is not None else float("nan"),
            clamped=outcome.clamped,
            rate_limited=outcome.rate_limited,
            new_chunks=tuple(new_chunks),
        )

    def reset(self, noise_scale: float | None = None, seed: int | None = None) -> None:
        """Start a new episode: forget queued chunks and the previous command (keeps weights and counters).

        ``noise_scale``, when given, replaces the config's (``RuntimeConfig.noise_scale``) from this episode on: a
        robot can explore in its fleet episodes and act deterministically when it is evaluated. ``seed``, when
        given, restarts the sampling noise from it, so an episode's exploration depends on its own seed, not on
        which robot ran it or what that robot ran before.
        """
        if noise_scale is not None:
            self.config = replace(self.config, noise_scale=noise_scale)
        if seed is not None:
            self._generator.manual_seed(seed)
        with self._lock:
            if self._request is not None:
                self._request = None
                self._in_flight = False
            self._ready.clear()
        self.blender.clear()
        self._previous = None
        self._last_chunk = None
        self._started_policy = False
        self._episode_start = self._step

    def _count(self, status: CommandStatus, clamped: bool, rate_limited: bool) -> None:
        counters = self.counters
        counters.steps += 1
        counters.policy_steps += status is CommandStatus.POLICY
        counters.held_waiting += status is CommandStatus.HOLD_WAITING
        counters.held_stale += status is CommandStatus.HOLD_STALE
        counters.held_starved += status is CommandStatus.HOLD_STARVED
        counters.held_nonfinite += status is CommandStatus.HOLD_NONFINITE
        counters.clamped += clamped
        counters.rate_limited += rate_limited

    def _collect_ready(self, step: int) -> list[Chunk]:
        with self._lock:
            ready, self._ready = self._ready, []
        return [chunk for chunk in ready if self._accept(chunk, step)]

    def _accept(self, chunk: Chunk, step: int) -> bool:
        if chunk.start_step < self._episode_start:
            return False
        late = self.config.mode == "realtime" and chunk.inference_latency > self.config.max_latency
        if late or chunk.end_step <= step:
            self.counters.missed_deadlines += 1
            LOG.warning(
                "dropping chunk %d (%s): latency %.1f ms missed the deadline",
                chunk.chunk_id,
                chunk.policy_version,
                chunk.inference_latency * 1e3,
            )
            return False
        self.blender.add(chunk, step)
        self._last_chunk = chunk
        self.counters.chunks += 1
        return True

    def _request_chunk(self, observation: PolicyObservation, step: int) -> list[Chunk]:
        request = _Request(observation=observation, step=step, submitted=time.perf_counter())
        if self.config.mode == "lockstep":
            chunk = self._infer(request)
            return [chunk] if chunk is not None and self._accept(chunk, step) else []
        with self._lock:
            if self._worker is None:
                raise RuntimeConfigError("realtime runtime is not started: call start() first")
            if not self._in_flight:
                self._request = request
                self._in_flight = True
                self._lock.notify_all()
        return []

    def _worker_loop(self) -> None:
        while True:
            with self._lock:
                while self._request is None and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                request, self._request = self._request, None
            chunk = self._infer(request)
            with self._lock:
                if chunk is not None:
                    self._ready.append(chunk)
                self._in_flight = False

    def _infer(self, request: _Request) -> Chunk | None:
        with self._lock:
            if self._pending is not None:
                LOG.info("policy swap: %s -> %s", self._predictor.version, self._pending.version)
                self._predictor, self._pending = self._pending, None
                self.counters.swaps += 1
            predictor = self._predictor
        try:
            actions = predictor.predict([request.observation], self._generator, self.config.noise_scale)[0]
        except Exception as error:
            # The worker must outlive any single bad observation or model error: the loop then holds.
            self.counters.inference_errors += 1
            LOG.error("inference failed with policy %s: %s: %s", predictor.version, type(error).__name__, error)
            return None
        chunk_id = self._chunk_counter
        self._chunk_counter += 1
        return Chunk(
            chunk_id=chunk_id,
            start_step=request.step,
            actions=actions,
            policy_version=predictor.version,
            inference_latency=time.perf_counter() - request.submitted,
            stamp=request.observation.stamp,
        )

    def offer_checkpoint(self, folder: str | os.PathLike[str]) -> Future[SwapReport]:
        """Verify and load a checkpoint off the control path; on success it serves from the next chunk.

        Realtime mode loads in a background thread; lockstep mode loads now (deterministic swap point).
        A rejected checkpoint is logged with its reason and changes nothing.
        """
        if self.config.mode == "realtime" and self._loader is not None:
            return self._loader.submit(self._load_and_stage, str(folder))
        future: Future[SwapReport] = Future()
        future.set_result(self._load_and_stage(str(folder)))
        return future

    def _load_and_stage(self, folder: str) -> SwapReport:
        try:
            checkpoint = load_checkpoint(folder, expected=self.policy_config, robot=self.robot)
            candidate = ChunkPredictor(checkpoint, self._predictor.encoder)
            actions = candidate.predict([candidate.blank_observation()], generator=torch.Generator().manual_seed(0))
            if not np.all(np.isfinite(actions)):
                raise CheckpointError(f"policy checkpoint {folder} produces non-finite actions")
        except (CheckpointError, RuntimeError, ValueError) as error:
            with self._lock:
                self.counters.rejected_checkpoints += 1
            LOG.error("rejected policy checkpoint %s: %s", folder, error)
            return SwapReport(folder=folder, accepted=False, version="", reason=str(error))
        with self._lock:
            self._pending = candidate
        LOG.info("policy %s staged from %s; it serves from the next chunk", checkpoint.version, folder)
        return SwapReport(folder=folder, accepted=True, version=checkpoint.version, reason="", digest=checkpoint.digest)

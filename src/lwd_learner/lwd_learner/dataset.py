"""Episode bags to control-step arrays and chunk-level transitions.

A recorded episode is decoded once into per-step arrays aligned on the stamp of
``/command/executed`` (docs/contracts.md): camera images, proprio (measured
joint positions), the perceived object poses, the executed action, the
intervention flag and the policy version. Chunk transitions (o_t, A_t, r, o_{t+H}, done) are built from those
arrays as indices plus action chunks, so images are never copied per sample.
A bag that cannot be an episode raises ``EpisodeError`` whose ``reason`` names why
(:mod:`lwd_fleet.quarantine`), so the stages that read fleet data can set it aside.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from lwd_interfaces import topics
from lwd_interfaces.episodes import COMPLETE_OUTCOMES, EPISODE_KINDS
from lwd_interfaces.manifest import Manifest, ManifestError, read_manifest, verify_folder
from lwd_interfaces.messages import pose_array_poses, stamp_ns
from lwd_logger.bag_reader import BagReader
from lwd_logger.errors import BagError, CorruptChunkError
from lwd_policy.proprio import no_object_poses

from lwd_fleet import quarantine
from lwd_learner.returns import n_step_returns

LOGGER = logging.getLogger(__name__)

_TELEOP_MODE = 1


class EpisodeError(ValueError):
    """A bag cannot be used as an episode; ``reason`` names why (lwd_fleet.quarantine), the message says more."""

    def __init__(self, message: str, reason: str = quarantine.UNREADABLE) -> None:
        super().__init__(message)
        self.reason = reason


def verified_manifest(folder: str | Path) -> Manifest:
    """The manifest of a committed episode folder once every file verifies; EpisodeError naming the reason if not."""
    try:
        manifest = read_manifest(folder)
        if manifest.kind != "episode":
            raise ManifestError(f"{folder}: manifest kind is {manifest.kind!r}, expected 'episode'")
    except (ManifestError, OSError) as error:
        raise EpisodeError(_manifest_message(folder, error), quarantine.INVALID_MANIFEST) from error
    try:
        return verify_folder(folder, kind="episode")
    except (ManifestError, OSError) as error:
        raise EpisodeError(_manifest_message(folder, error), quarantine.CHECKSUM_MISMATCH) from error


def _manifest_message(folder: str | Path, error: Exception) -> str:
    text = str(error)
    return f"manifest check failed: {text}" if str(folder) in text else f"{folder}: manifest check failed: {text}"


@dataclass
class Episode:
    """One decoded episode: per-control-step arrays plus the facts recorded in the bag's custom data.

    ``key`` identifies the bag's content (its manifest sha256); every array has T rows.
    ``object_poses`` is ``[T, N, 7]``: the task objects' poses from ``/perception/object_poses``
    (N = 0 when the robot had no perception; None when the episode was not decoded from a bag).
    ``terminal``: the episode ended in a terminal state (``lwd.terminal``), so no value is bootstrapped after
    its end; False for a time-limit cut, which is bootstrapped (see ``_episode_terminal``).
    """

    key: str
    episode_id: str
    robot_id: str
    task: str
    instruction: str
    episode_kind: str
    outcome: str
    cameras: tuple[str, ...]
    stamps: np.ndarray
    images: dict[str, np.ndarray]
    proprio: np.ndarray
    actions: np.ndarray
    intervention: np.ndarray
    policy_version: np.ndarray
    terminal: bool
    object_poses: np.ndarray | None = None

    @property
    def steps(self) -> int:
        """Number of aligned control steps T."""
        return int(self.stamps.shape[0])

    @property
    def success(self) -> bool:
        """True when the operator labelled the episode a success."""
        return self.outcome == "success"

    @property
    def is_demonstration(self) -> bool:
        """True for teleoperated demonstrations (as opposed to deployment rollouts)."""
        return self.episode_kind == "demonstration"

    @property
    def operator_executed(self) -> np.ndarray:
        """True on the steps the operator executed [T]: every step of a demonstration, the intervention steps of a
        deployment episode."""
        return np.ones(self.steps, dtype=bool) if self.is_demonstration else self.intervention

    @property
    def operator_to_clone(self) -> np.ndarray:
        """True on the operator's steps a cloning loss may learn from [T]: those it executed, except in a failed
        demonstration (a replay on another scene, ``lwd_sim.replay``, or a demonstration that went wrong), which
        shows no way to succeed."""
        if self.is_demonstration and not self.success:
            return np.zeros(self.steps, dtype=bool)
        return self.operator_executed


@dataclass
class ChunkTransitions:
    """Chunk-level transitions of one episode: N rows, horizon H, action dim D.

    Row j starts at step ``obs_index[j]``; ``actions[j]`` holds the H executed actions from there,
    padded past the episode end by repeating the final action (``action_mask`` False on padding).
    ``operator_mask`` marks the steps a cloning loss may learn from: the run of operator-executed steps the
    chunk starts with (``operator_chunk_mask``). ``intervention`` is True on a chunk that starts at such a
    step, i.e. one the operator drove from its first step; a chunk that starts with the policy is not one,
    even when the operator takes over within it.
    ``reward``/``discount``/``next_obs_index`` are the n-step return Σ γ^{iH} r_{t+iH}, the factor of the
    bootstrap value (0 after a terminal) and the step whose observation is bootstrapped from.
    ``done`` marks the chunk that reaches the final step of an episode that ended in a terminal state
    (``Episode.terminal``); the last chunk of a time-limit cut is not done and bootstraps.
    """

    horizon: int
    obs_index: np.ndarray
    next_obs_index: np.ndarray
    actions: np.ndarray
    action_mask: np.ndarray
    operator_mask: np.ndarray
    reward: np.ndarray
    discount: np.ndarray
    done: np.ndarray
    intervention: np.ndarray
    policy_version: np.ndarray

    @property
    def count(self) -> int:
        """Number of transitions N."""
        return int(self.obs_index.shape[0])

    @classmethod
    def gather(cls, rows: Sequence[tuple[ChunkTransitions, int]]) -> ChunkTransitions:
        """The given rows of several episodes' transitions (of one horizon), stacked in order: a sampled batch."""
        horizon = rows[0][0].horizon
        if any(transitions.horizon != horizon for transitions, _ in rows):
            raise ValueError("cannot gather transitions of different horizons into one batch")
        stacked = {
            name: np.stack([getattr(transitions, name)[row] for transitions, row in rows])
            for name in (f.name for f in fields(cls))
            if name != "horizon"
        }
        return cls(horizon=horizon, **stacked)

    def observed_frames(self) -> np.ndarray:
        """The frames whose observation a transition reads (its start or its bootstrap frame), sorted."""
        return np.union1d(self.obs_index, self.next_obs_index)

    @property
    def truncated(self) -> np.ndarray:
        """True where the chunk was padded past the episode end [N]."""
        return ~self.action_mask.all(axis=1)


def _episode_terminal(custom_data: dict[str, str], outcome: str, bag_dir: Path) -> bool:
    """Whether an episode bag ended in a terminal state, from its ``lwd.terminal`` fact.

    Bags recorded before that fact existed: a success is terminal and a failure is a time-limit cut. Their
    failures were the simulator's step limit or an operator stopping the robot, and the terminal flag of
    their ``RewardLabel`` message was true whatever happened, so it tells nothing.
    """
    recorded = custom_data.get("lwd.terminal", "")
    if recorded in ("true", "false"):
        return recorded == "true"
    if recorded:
        raise EpisodeError(
            f"{bag_dir}: lwd.terminal must be 'true' or 'false', got {recorded!r}", quarantine.INVALID_FACTS
        )
    return outcome == "success"


def _stamp_ns(message: object) -> int:
    return stamp_ns(message.header.stamp)  # type: ignore[attr-defined]


def _image_array(message: object, source: str) -> np.ndarray:
    height, width = int(message.height), int(message.width)  # type: ignore[attr-defined]
    encoding = str(message.encoding)  # type: ignore[attr-defined]
    if encoding not in ("rgb8", "bgr8"):
        raise EpisodeError(
            f"{source}: unsupported image encoding {encoding!r} (expected rgb8 or bgr8)", quarantine.BAD_MESSAGE
        )
    row_bytes = int(message.step)  # type: ignore[attr-defined]
    data = np.asarray(message.data, dtype=np.uint8)  # type: ignore[attr-defined]
    if data.size != height * row_bytes or row_bytes < width * 3:
        raise EpisodeError(
            f"{source}: image data has {data.size} bytes, expected {height}x{row_bytes}", quarantine.BAD_MESSAGE
        )
    image = data.reshape(height, row_bytes)[:, : width * 3].reshape(height, width, 3)
    return image[:, :, ::-1].copy() if encoding == "bgr8" else image


class _StampedSeries:
    """Values keyed by stamp; lookup takes the exact stamp or the latest one before it."""

    def __init__(self) -> None:
        self.stamps: list[int] = []
        self.values: list[object] = []

    def add(self, stamp: int, value: object) -> None:
        self.stamps.append(stamp)
        self.values.append(value)

    def sort(self) -> None:
        order = sorted(range(len(self.stamps)), key=self.stamps.__getitem__)
        self.stamps = [self.stamps[i] for i in order]
        self.values = [self.values[i] for i in order]

    def at_or_before(self, stamp: int) -> object | None:
        position = bisect.bisect_right(self.stamps, stamp)
        return self.values[position - 1] if position else None


@dataclass
class _Streams:
    """The messages of one episode bag that a decoded episode is built from, each sorted by stamp."""

    executed: dict[int, np.ndarray] = field(default_factory=dict)
    joints: _StampedSeries = field(default_factory=_StampedSeries)
    interventions: _StampedSeries = field(default_factory=_StampedSeries)
    versions: _StampedSeries = field(default_factory=_StampedSeries)
    poses: _StampedSeries = field(default_factory=_StampedSeries)
    images: dict[str, _StampedSeries] = field(default_factory=dict)


def decode_episode(bag_dir: str | Path, key: str, cameras: tuple[str, ...] | None = None) -> Episode:
    """Decode an LWD episode bag into per-step arrays aligned on ``/command/executed`` stamps.

    ``cameras`` selects the image streams (default: the bag's ``lwd.cameras``). Raises EpisodeError
    for a foreign bag (no LWD custom data), an incomplete episode, or unreadable/corrupt content.
    """
    bag_dir = Path(bag_dir)
    try:
        reader = BagReader(bag_dir)
    except CorruptChunkError as error:
        raise EpisodeError(str(error), quarantine.CORRUPT_CHUNK) from error
    except BagError as error:
        raise EpisodeError(f"corrupt bag: {error}", quarantine.CORRUPT_BAG) from error
    custom = reader.info.custom_data
    if "lwd.episode_id" not in custom:
        raise EpisodeError(f"{bag_dir}: foreign bag, its metadata has no lwd.* custom data", quarantine.FOREIGN_BAG)
    outcome = custom.get("lwd.outcome", "")
    if outcome not in COMPLETE_OUTCOMES:
        raise EpisodeError(f"{bag_dir}: incomplete episode, lwd.outcome is {outcome!r}", quarantine.INCOMPLETE)
    kind = custom.get("lwd.episode_kind", "")
    if kind not in EPISODE_KINDS:
        raise EpisodeError(f"{bag_dir}: unknown lwd.episode_kind {kind!r}", quarantine.INVALID_FACTS)
    terminal = _episode_terminal(custom, outcome, bag_dir)
    bag_cameras = tuple(name for name in custom.get("lwd.cameras", "").split(",") if name)
    cameras = tuple(cameras) if cameras is not None else bag_cameras
    streams = _read_streams(reader, bag_dir, cameras)
    steps = _align_steps(streams, cameras, custom.get("lwd.policy_versions", "").split(",")[0], bag_dir)
    return Episode(
        key=key,
        episode_id=custom["lwd.episode_id"],
        robot_id=custom.get("lwd.robot_id", ""),
        task=custom.get("lwd.task", ""),
        instruction=custom.get("lwd.instruction", ""),
        episode_kind=kind,
        outcome=outcome,
        cameras=cameras,
        terminal=terminal,
        **steps,
    )


def _read_streams(reader: BagReader, bag_dir: Path, cameras: tuple[str, ...]) -> _Streams:
    """Read the topics a decoded episode needs; every one of them must have messages."""
    camera_topics = {topics.camera_topic(name): name for name in cameras}
    missing = [
        topic
        for topic in (topics.EXECUTED_COMMAND, topics.JOINT_STATES, *camera_topics)
        if not reader.info.message_counts.get(topic)
    ]
    if missing:
        raise EpisodeError(f"{bag_dir}: bag has no messages on the topics {missing}", quarantine.MISSING_TOPICS)
    streams = _Streams(images={name: _StampedSeries() for name in cameras})
    wanted = {
        topics.EXECUTED_COMMAND,
        topics.JOINT_STATES,
        topics.INTERVENTION_STATE,
        topics.POLICY_VERSION,
        topics.OBJECT_POSES,
    }
    try:
        for item in reader.messages(wanted | set(camera_topics)):
            _add_message(streams, item.topic, item.msg, camera_topics, bag_dir)
    except EpisodeError:
        raise
    except CorruptChunkError as error:
        raise EpisodeError(str(error), quarantine.CORRUPT_CHUNK) from error
    except BagError as error:
        raise EpisodeError(f"corrupt bag: {error}", quarantine.CORRUPT_BAG) from error
    except AttributeError as error:
        raise EpisodeError(
            f"{bag_dir}: a message does not have the contract's type ({error})", quarantine.BAD_MESSAGE
        ) from error
    except Exception as error:  # a stage that reads fleet data must go on: an unforeseen failure is quarantined too
        raise EpisodeError(
            f"{bag_dir}: reading failed: {type(error).__name__}: {error}", quarantine.UNREADABLE
        ) from error
    for series in (streams.joints, streams.interventions, streams.versions, streams.poses, *streams.images.values()):
        series.sort()
    return streams


def _add_message(streams: _Streams, topic: str, message: object, camera_topics: dict[str, str], bag_dir: Path) -> None:
    """File one decoded message in its stream; executed-command stamps must increase, or steps would collapse."""
    stamp = _stamp_ns(message)
    if topic == topics.POLICY_VERSION:
        streams.versions.add(stamp, str(message.version))  # type: ignore[attr-defined]
    elif topic == topics.EXECUTED_COMMAND:
        last = next(reversed(streams.executed), None)
        if last is not None and stamp <= last:
            raise EpisodeError(
                f"{bag_dir}: executed command header stamps do not increase ({stamp} after {last}); "
                f"steps aligned on them would collapse",
                quarantine.NON_INCREASING_STAMPS,
            )
        streams.executed[stamp] = np.asarray(message.position, dtype=np.float32)  # type: ignore[attr-defined]
    elif topic == topics.JOINT_STATES:
        streams.joints.add(stamp, np.asarray(message.position, dtype=np.float32))  # type: ignore[attr-defined]
    elif topic == topics.INTERVENTION_STATE:
        active = bool(message.active) or int(message.mode) == _TELEOP_MODE  # type: ignore[attr-defined]
        streams.interventions.add(stamp, active)
    elif topic == topics.OBJECT_POSES:
        streams.poses.add(stamp, pose_array_poses(message))
    else:
        streams.images[camera_topics[topic]].add(stamp, _image_array(message, f"{bag_dir} {topic}"))


def _align_steps(streams: _Streams, cameras: tuple[str, ...], default_version: str, bag_dir: Path) -> dict:
    """Per-step arrays (the ``Episode`` fields from ``stamps`` on): one step per executed command that has a
    joint state, every camera image and (when the bag has perception) object poses at or before it."""
    perceived = bool(streams.poses.stamps)
    step_stamps, proprio, actions, flags, step_versions, step_poses = [], [], [], [], [], []
    step_images: dict[str, list[np.ndarray]] = {name: [] for name in cameras}
    for stamp in sorted(streams.executed):
        joint = streams.joints.at_or_before(stamp)
        frames = {name: streams.images[name].at_or_before(stamp) for name in cameras}
        objects = streams.poses.at_or_before(stamp) if perceived else no_object_poses()
        if joint is None or objects is None or any(frame is None for frame in frames.values()):
            continue
        step_stamps.append(stamp)
        proprio.append(joint)
        actions.append(streams.executed[stamp])
        flags.append(bool(streams.interventions.at_or_before(stamp) or False))
        step_versions.append(str(streams.versions.at_or_before(stamp) or default_version))
        step_poses.append(objects)
        for name in cameras:
            step_images[name].append(frames[name])  # type: ignore[arg-type]
    if not step_stamps:
        raise EpisodeError(
            f"{bag_dir}: no control step has an executed command, joint state and every camera image",
            quarantine.NO_STEPS,
        )
    dims = {array.shape for array in proprio} | {array.shape for array in actions}
    if len(dims) != 1:
        raise EpisodeError(
            f"{bag_dir}: joint vectors change size within the episode: {sorted(dims)}", quarantine.INCONSISTENT_SHAPES
        )
    try:
        stacked_images = {name: np.stack(frames) for name, frames in step_images.items()}
    except ValueError as error:
        raise EpisodeError(
            f"{bag_dir}: camera images change size within the episode ({error})", quarantine.INCONSISTENT_SHAPES
        ) from error
    try:
        object_poses = np.stack(step_poses)
    except ValueError as error:
        raise EpisodeError(
            f"{bag_dir}: the number of object poses changes within the episode ({error})",
            quarantine.INCONSISTENT_SHAPES,
        ) from error
    return {
        "stamps": np.asarray(step_stamps, dtype=np.int64),
        "images": stacked_images,
        "proprio": np.stack(proprio),
        "actions": np.stack(actions),
        "intervention": np.asarray(flags, dtype=bool),
        "policy_version": np.asarray(step_versions, dtype=np.str_),
        "object_poses": object_poses,
    }


def action_chunks(episode: Episode, starts: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The executed chunks ``[N, H, D]`` from each start and their ``action_mask [N, H]``.

    A chunk that runs past the episode's end is padded by repeating the final action; ``action_mask`` is False
    on that padding, which no cloning loss may learn from (the robot never executed it).
    """
    index = starts[:, None] + np.arange(horizon, dtype=np.int64)[None, :]
    return episode.actions[np.minimum(index, episode.steps - 1)], index < episode.steps


def operator_chunk_mask(episode: Episode, starts: np.ndarray, horizon: int) -> np.ndarray:
    """The steps of each chunk from ``starts`` that are the operator's to clone ``[N, H]``.

    That is the run of the operator's steps to clone (``Episode.operator_to_clone``) the chunk starts with, up to
    the hand-back (or the episode's end):
    a chunk that starts with a policy step has none, and the policy's steps after a hand-back are left out too.
    Cloning a chunk that holds the policy's actions would teach the policy its own mistakes as the operator's.
    """
    index = starts[:, None] + np.arange(horizon, dtype=np.int64)[None, :]
    executed = episode.operator_to_clone[np.minimum(index, episode.steps - 1)] & (index < episode.steps)
    return np.logical_and.accumulate(executed, axis=1)


def build_transitions(
    episode: Episode, horizon: int, gamma: float, n_step: int = 1, stride: int | None = None
) -> ChunkTransitions:
    """Chunk-level transitions starting every ``stride`` steps (default H) and at every takeover, with sparse
    reward and n-step returns.

    A chunk starting at a takeover holds the operator's actions from the takeover on, so an intervention chunk
    (``intervention``; the base flow and HG-DAgger clone its ``operator_mask``) never starts with the policy's
    steps from before the takeover.

    The one-chunk reward is 1 on the chunk that reaches the final step of a successful episode, else 0.
    That chunk is terminal only when the episode ended in a terminal state (``Episode.terminal``: a success,
    or a failure the task cannot go on from). A time-limit cut is not terminal: its last chunks bootstrap
    from the last recorded observation, the nearest one to the state the cut left the robot in.
    The chunks H steps apart from a start form its chain, on which ``lwd_learner.returns.n_step_returns``
    computes the n-step sum and bootstrap discount γ^{mH}.
    """
    stride = horizon if stride is None else stride
    if horizon < 1 or n_step < 1 or stride < 1 or horizon % stride:
        raise ValueError(
            f"need horizon, n_step, stride >= 1 with stride dividing horizon; got {horizon}, {n_step}, {stride}"
        )
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    steps = episode.steps
    operator = episode.operator_executed
    takeovers = np.flatnonzero(operator & ~np.concatenate(([False], operator[:-1])))
    starts = np.union1d(np.arange(0, steps, stride, dtype=np.int64), takeovers)
    actions, action_mask = action_chunks(episode, starts, horizon)
    operator_mask = operator_chunk_mask(episode, starts, horizon)
    reward_sum = np.zeros(starts.shape[0], dtype=np.float32)
    discount = np.zeros(starts.shape[0], dtype=np.float32)
    next_obs_index = np.zeros(starts.shape[0], dtype=np.int64)
    for phase in np.unique(starts % horizon):
        chain = np.arange(phase, steps, horizon, dtype=np.int64)
        last = chain + horizon >= steps
        chain_sum, chain_discount, chain_steps = n_step_returns(
            torch.from_numpy((last & episode.success).astype(np.float32)),
            torch.from_numpy(last & episode.terminal),
            gamma**horizon,
            n_step,
        )
        rows = np.flatnonzero(starts % horizon == phase)
        links = (starts[rows] - phase) // horizon
        reward_sum[rows] = chain_sum.numpy()[links]
        discount[rows] = chain_discount.numpy()[links]
        next_obs_index[rows] = np.minimum(starts[rows] + chain_steps.numpy()[links] * horizon, steps - 1)
    return ChunkTransitions(
        horizon=horizon,
        obs_index=starts,
        next_obs_index=next_obs_index,
        actions=actions,
        action_mask=action_mask,
        operator_mask=operator_mask,
        reward=reward_sum,
        discount=discount,
        done=(starts + horizon >= steps) & episode.terminal,
        intervention=operator_mask[:, 0],
        policy_version=episode.policy_version[starts],
    )

"""TrainerService: the continual offline-to-online trainer behind ``lwd train serve`` and ``trainer_node``.

Loop: watch the fleet store for committed episodes (a folder with a manifest that
verifies), decode and cache them, encode their frames once with the frozen
pretrained encoder, stream their chunk transitions into the replay buffer, run
``LWDAgent.update`` on sampled batches, and every ``publish_every`` updates save a
resume checkpoint and then publish the fine-tuned policy atomically. A NaN/inf
loss stops training with TrainerError before anything is published. After a kill
the service resumes from its last resume checkpoint: agent (modules, optimizers,
RNG), replay-buffer position, episode ledger and step counter.

Under torchrun (:mod:`lwd_learner.distributed`) every rank holds the same replay buffer and ledger, and
samples its own batches from it with its own RNG, which is what DDP's gradient average assumes (each
replica's batch drawn from the same data). Ingest is split: the ranks deal each scan's new episodes out
between them, each verifies, decodes and encodes its share, so adding ranks adds ingest rate, and every rank
then adds every episode from the shared episode and feature caches (the ranks share ``work_dir``), in the
same order.

A bad episode never stops the loop: it is set aside with a named reason
(:mod:`lwd_fleet.quarantine`) in the ledger and the catalog's quarantine, counted
in the status JSON, logged in one line, and the rest are ingested. The catalog
keys it by manifest digest, so a restart (even one that lost its ledger) does not
read it again; a store that cannot be reached is retried at the next scan instead.
A resume treats the episodes its checkpoint buffered the same way: one that can no
longer be restored is quarantined and the others are restored.

With a canary channel (``canary_channel``) each version is published there instead of on ``channel``, and
after every scan the canary monitor (:mod:`lwd_fleet.canary`) compares the canary version's labelled success
with the stable version's on the catalog: it rolls the canary channel back to the stable version when the
canary is clearly worse, or promotes it to ``channel`` when it is not worse. The trainer is the process a
fleet runs continuously and the one that publishes to the canary, so the monitor lives with it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lwd_fleet.canary import CanaryMonitor, CanaryRule
from lwd_fleet.catalog import Catalog
from lwd_fleet.errors import FleetError, ReleaseKeyError, StoreError
from lwd_fleet.layout import CATALOG_NAME, EPISODE_MANIFESTS, manifest_folder, manifest_key, policy_folder
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.signing import ReleaseKey
from lwd_fleet.store import TRANSIENT_ERRORS, FleetStore
from lwd_interfaces.manifest import MANIFEST_NAME, ManifestError, read_manifest
from lwd_policy.checkpoint import CheckpointError, PolicyCheckpoint, load_checkpoint, save_checkpoint

from lwd_fleet import quarantine
from lwd_learner.agent import LWDAgent, TrainingDivergedError
from lwd_learner.agent_config import AgentConfig, AgentConfigError
from lwd_learner.dataset import ChunkTransitions, Episode, EpisodeError, build_transitions
from lwd_learner.distributed import DistributedContext
from lwd_learner.episode_cache import EpisodeCache
from lwd_learner.feature_cache import EncodedFrames, FeatureCache
from lwd_learner.ingest import IngestJob, IngestPool, Prepared
from lwd_learner.observations import TextEmbedder, check_episode
from lwd_learner.parameters import TRAINER_NODE
from lwd_learner.replay_buffer import CATEGORIES, ReplayBuffer
from lwd_learner.telemetry import Telemetry
from lwd_learner.training_state import TrainingCheckpoints, TrainingState
from lwd_learner.transition import TransitionBatch

LOGGER = logging.getLogger(__name__)
DEFAULT_MIX = {"demo": 0.25, "autonomous": 0.5, "intervention": 0.25}
DEFAULT_MAX_OVERSAMPLE = TRAINER_NODE.defaults()["max_oversample"]


class TrainerError(RuntimeError):
    """The trainer cannot continue (diverged training, unusable pretrained policy, inconsistent resume state)."""


@dataclass
class TrainerConfig:
    """Settings of the trainer service (the ``trainer_node`` parameters and ``lwd train serve`` options).

    ``pretrained`` is a local policy folder or a version published in the store; empty means the
    version ``channel`` serves now. ``agent`` overrides AgentConfig fields (lam, lr, value, actor...).
    ``catalog`` is the SQLite episode catalog (default ``<work_dir>/catalog.sqlite``). ``cache_dir`` holds the
    decoded episodes and their encoder features (default ``<work_dir>/cache``); both are keyed by content, so
    trainers (and BC pretraining) on the same episodes may share it. ``signing_key`` is
    the release private key file that signs every published policy (empty: published unsigned, which robots
    refuse unless they allow unsigned policies). ``ingest_workers``
    processes verify and decode new episodes (0: the trainer's own process does).
    A non-empty ``clone_mix`` draws a second batch every update, by that mix, for the cloning loss alone (the base
    flow's; the BC actor's): cloning then learns from the operator's steps at their own shares, not the critic's.
    A non-empty ``canary_channel`` publishes there first and runs the canary monitor with ``canary_window``
    labelled episodes and a ``canary_margin`` success-rate margin (:class:`lwd_fleet.canary.CanaryRule`).
    """

    store_url: str
    work_dir: Path
    pretrained: str = ""
    channel: str = "stable"
    publish_every: int = 100
    batch_size: int = 64
    buffer_capacity: int = 200_000
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    clone_mix: dict[str, float] = field(default_factory=dict)
    max_oversample: float = DEFAULT_MAX_OVERSAMPLE
    scan_every: int = 50
    poll_interval: float = 5.0
    n_step: int = 1
    stride: int = 0
    agent: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    catalog: str = ""
    cache_dir: str = ""
    signing_key: str = ""
    ingest_workers: int = 0
    canary_channel: str = ""
    canary_window: int = CanaryRule.window
    canary_margin: float = CanaryRule.margin

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir)
        self.catalog = self.catalog or str(self.work_dir / CATALOG_NAME)
        self.cache_dir = self.cache_dir or str(self.work_dir / "cache")
        if self.ingest_workers < 0:
            raise ValueError(f"trainer ingest_workers must be >= 0 (0: in-process), got {self.ingest_workers}")
        for name in ("publish_every", "batch_size", "buffer_capacity", "scan_every", "n_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"trainer {name} must be >= 1, got {getattr(self, name)}")
        if self.stride < 0:
            raise ValueError(f"trainer stride must be >= 0 (0: one chunk), got {self.stride}")
        if self.canary_channel == self.channel:
            raise ValueError(f"trainer canary_channel must differ from channel {self.channel!r}")
        self.canary_rule()  # checks window and margin

    def canary_rule(self) -> CanaryRule:
        """The canary monitor's rule from ``canary_window`` and ``canary_margin``."""
        return CanaryRule(self.canary_window, self.canary_margin)

    @property
    def publish_channel(self) -> str:
        """The channel every published version goes to: the canary channel when there is one."""
        return self.canary_channel or self.channel


@dataclass
class _BufferedEpisode:
    features: EncodedFrames
    demonstration: bool


class TrainerService:
    """Ingests committed store episodes, trains the LWD agent, publishes policies, and resumes after a kill."""

    def __init__(
        self,
        config: TrainerConfig,
        embedder_factory: Callable[[PolicyCheckpoint], TextEmbedder],
        distributed: DistributedContext | None = None,
    ) -> None:
        self.config = config
        self.context = distributed or DistributedContext()
        work = config.work_dir
        self._open_fleet()
        self.checkpoints = TrainingCheckpoints(work / "checkpoints")
        self.telemetry = Telemetry(work / "telemetry", enabled=self.context.is_main)
        resume = self.checkpoints.load_latest()
        pretrained_source = resume.trainer["pretrained"] if resume else self._pretrained_source()
        try:
            self.pretrained = load_checkpoint(pretrained_source)
        except CheckpointError as error:
            raise TrainerError(f"cannot start from the pretrained policy: {error}") from error
        self.pretrained_source = pretrained_source
        self.pretrained.model.requires_grad_(False)
        self.encoder_version = self.pretrained.digest[:16]
        self.episodes = EpisodeCache.under(config.cache_dir)
        self.features = FeatureCache(
            Path(config.cache_dir) / "features",
            self.pretrained.model,
            self.pretrained.normalizer,
            _LazyEmbedder(lambda: embedder_factory(self.pretrained)),
            self.encoder_version,
        )
        self.agent_config = self._agent_config()
        self.agent = LWDAgent(
            self.agent_config,
            self.pretrained.model.action_expert,
            device=self.context.device,
            grad_sync=self.context.average_gradients,
            finite_sync=self.context.diverged_ranks,
        )
        self.buffer = ReplayBuffer(
            config.buffer_capacity,
            config.mix,
            seed=config.seed + self.context.rank,
            max_oversample=config.max_oversample,
        )
        self.buffered: dict[str, _BufferedEpisode] = {}
        self.ledger: dict[str, dict[str, str]] = {}
        self.ingest_pool = IngestPool(config.ingest_workers)
        self.ingest_rate = 0.0
        self.backlog = 0
        self._identities: dict[str, str] = {}
        self.published_version = ""
        self.step = 0
        self._rate = (time.monotonic(), 0)
        self._last_scan = float("-inf")
        self._new_in_period = 0
        self.idle = False
        if resume is not None:
            self._resume(resume)
        self.agent.load_state_dict(self.context.broadcast_state(self.agent.state_dict()))
        self._ready = self._all_agree(len(self.buffer) > 0)
        self.telemetry.update_status(
            state="ready", step=self.step, published_version=self.published_version, **self._ledger_counts()
        )

    def _open_fleet(self) -> None:
        """The store (a reader: a mistyped URL is an error, not a new store), the signing publisher, the catalog
        (every rank records the episodes it ingests) and, with a canary channel, the canary monitor (main rank)."""
        config = self.config
        self.store = FleetStore(config.store_url, create=False)
        try:
            release_key = ReleaseKey.from_file(config.signing_key) if config.signing_key else None
        except ReleaseKeyError as error:
            raise TrainerError(f"cannot sign policies: {error}") from error
        self.publisher = PolicyPublisher(self.store, release_key)
        self.catalog = Catalog(config.catalog)
        self.canary = (
            CanaryMonitor(self.publisher, self.catalog, config.channel, config.canary_channel, config.canary_rule())
            if config.canary_channel and self.context.is_main
            else None
        )

    def _agent_config(self) -> AgentConfig:
        """The agent's settings: the pretrained policy's shapes, then the trainer's overrides, checked."""
        config, policy = self.config, self.pretrained.config
        settings = {
            "feature_dim": self.pretrained.model.feature_dim,
            "horizon": policy.horizon,
            "action_dim": policy.action_dim,
            "flow_steps": policy.flow_steps,
            "n_step": config.n_step,
            "seed": config.seed,
            **config.agent,
        }
        try:
            agent_config = AgentConfig.from_dict(settings)
        except AgentConfigError as error:
            raise TrainerError(f"bad agent settings {config.agent}: {error}") from error
        if (agent_config.horizon, agent_config.action_dim) != (policy.horizon, policy.action_dim):
            raise TrainerError(
                f"agent horizon/action_dim {agent_config.horizon}/{agent_config.action_dim} must match "
                f"the policy's {policy.horizon}/{policy.action_dim}"
            )
        return agent_config

    # Store side -----------------------------------------------------------------------------------------

    def _pretrained_source(self) -> str:
        pretrained = self.config.pretrained
        if pretrained and Path(pretrained).is_dir():
            return str(Path(pretrained).resolve())
        version = pretrained or self.publisher.channel_version(self.config.channel)
        if not version:
            raise TrainerError(
                f"no pretrained policy: pass one (folder or store version) or publish one on channel "
                f"{self.config.channel!r} (e.g. `lwd train bc` then `lwd train publish`)"
            )
        return str(self._localize(policy_folder(version)))

    def _localize(self, folder: str) -> Path:
        """A local folder with the content of a store folder (the folder itself on a local store), manifest last."""
        if self.store.is_local:
            return Path(self.store.path(folder))
        local = self.config.work_dir / "staging" / folder
        if not (local / MANIFEST_NAME).is_file():
            local.mkdir(parents=True, exist_ok=True)
            manifest = manifest_key(folder)
            for key in self.store.find(folder):
                target = local / key[len(folder) + 1 :]
                target.parent.mkdir(parents=True, exist_ok=True)
                if key != manifest:
                    self.store.download_file(key, target)
            self.store.download_file(manifest, local / MANIFEST_NAME)
        return local

    def committed_episodes(self) -> list[str]:
        """Store keys of the folder of every committed episode (its manifest is in place), sorted."""
        return sorted(manifest_folder(key) for key in self.store.glob(EPISODE_MANIFESTS))

    def ingest_new(self) -> int:
        """Ingest every committed episode not yet in the ledger; returns how many entered the buffer.

        Rank 0's listing of new episodes is every rank's. Each rank prepares its share of them
        (``DistributedContext.share``): verified and decoded in the ingest pool, checked and encoded here, into
        the shared episode and feature caches. The ranks then exchange the outcomes, and every rank enters each
        one in its ledger and adds each ingested episode to its buffer from the caches, in store-key order, so
        buffers and ledgers stay the same on every rank whatever the timing. A bad episode is quarantined (in
        the catalog by the rank that prepared it) and the others go on; one the store cannot deliver now, or
        whose worker died, is tried next scan. Under torchrun every rank must call it at the same point of its
        loop.
        """
        started = time.monotonic()
        listing = [r for r in self.committed_episodes() if r not in self.ledger] if self.context.is_main else None
        found: list[str] = self.context.broadcast_json(listing)
        self.backlog = len(found)
        mine = self.context.share(found)
        outcomes: dict[str, dict[str, str]] = {}
        for part in self.context.all_gather_json(self._prepare_own(mine)):
            outcomes.update(part)
        added = frames = 0
        for relative in found:
            entry = outcomes.get(relative)
            if entry is None:
                continue
            if entry["status"] == "ingested":
                entry = self._buffer_episode(relative, entry, catalogue=relative in mine)
            self._enter(relative, entry)
            if entry["status"] == "ingested":
                added += 1
                frames += self.buffered[entry["key"]].features.steps
        if added:
            self.ingest_rate = frames / max(time.monotonic() - started, 1e-9)
        if found:
            self._report_ingest()
        return added

    def _prepare_own(self, relatives: list[str]) -> dict[str, dict[str, str]]:
        """This rank's share of a scan: the ledger entry of each of its episodes that could be read now, each
        ingested one verified, decoded and encoded into the caches (not yet in the buffer)."""
        started = time.monotonic()
        entries: dict[str, dict[str, str]] = {}
        jobs = []
        for relative in relatives:
            admitted = self._admit(relative)
            if isinstance(admitted, IngestJob):
                jobs.append(admitted)
            elif admitted is not None:
                entries[relative] = admitted
        frames = 0
        for job, prepared in self.ingest_pool.prepared(jobs):
            if prepared is None:
                continue
            entries[job.relative] = self._finish(job, prepared)
            if entries[job.relative]["status"] == "ingested":
                frames += prepared.episode.steps
                self.ingest_rate = frames / max(time.monotonic() - started, 1e-9)
                self._report_ingest()
        return entries

    def _enter(self, relative: str, entry: dict[str, str]) -> None:
        """Record one episode's ledger entry; it leaves the backlog."""
        self.ledger[relative] = entry
        self.backlog -= 1

    def _report_ingest(self) -> None:
        """Status and TensorBoard: ingest rate (frames/s of the current scan), backlog, buffer, ledger counts."""
        self.telemetry.record_ingest(self.step, self.ingest_rate, self.backlog)
        shares = self.buffer.batch_shares() if len(self.buffer) else {}
        self.telemetry.update_status(buffer=self.buffer.composition(), batch_shares=shares, **self._ledger_counts())

    def _admit(self, relative: str) -> IngestJob | dict[str, str] | None:
        """The ingest job of one committed episode, its ledger entry when it is known bad or has no manifest,
        or None when the store could not be read (try again at the next scan)."""
        try:
            identity = quarantine.manifest_identity(self.store.read_bytes(manifest_key(relative)))
            known = self.catalog.rejection(relative, identity)
            if known is not None:
                LOGGER.info("episode %s stays quarantined (%s)", relative, known["reason"])
                return {"status": "skipped", "reason": known["reason"], "detail": known["detail"], "key": identity}
            local = self._localize(relative)
        except (IsADirectoryError, NotADirectoryError) as error:
            return self._set_aside(relative, "", quarantine.INVALID_MANIFEST, f"{relative}: not a manifest ({error})")
        except (*TRANSIENT_ERRORS, StoreError) as error:
            LOGGER.warning("episode %s not read from the store, retrying at the next scan: %s", relative, error)
            return None
        self._identities[relative] = identity
        cameras = tuple(self.pretrained.config.cameras)
        return IngestJob(relative, str(local), str(self.episodes.cache_dir), cameras)

    def _finish(self, job: IngestJob, prepared: Prepared) -> dict[str, str]:
        """The ledger entry of one episode this rank prepared: checked and its frames encoded, or set aside."""
        relative, identity = job.relative, self._identities.pop(job.relative)
        if prepared.manifest is None or prepared.episode is None:
            return self._set_aside(relative, identity, prepared.reason, prepared.detail)
        try:
            check_episode(prepared.episode, job.local, self.pretrained.config)
            self.features.features(prepared.episode, self._transitions(prepared.episode).observed_frames())
        except EpisodeError as error:
            return self._set_aside(relative, identity, error.reason, str(error))
        except Exception as error:  # one bad episode must never stop the trainer, whatever it breaks
            LOGGER.exception("episode %s could not be ingested", relative)
            detail = f"{relative}: {type(error).__name__}: {error}"
            return self._set_aside(relative, identity, quarantine.UNREADABLE, detail)
        return {"status": "ingested", "reason": "", "detail": "", "key": prepared.manifest.digest, "local": job.local}

    def _buffer_episode(self, relative: str, entry: dict[str, str], catalogue: bool) -> dict[str, str]:
        """Add an episode a rank prepared to the buffer, from the caches; returns its final ledger entry.

        The same content already ingested under another store key is set aside as a duplicate. Every rank
        decides the same; only the one that prepared the episode (``catalogue``) writes the catalog.
        """
        key = entry["key"]
        if any(e["key"] == key and e["status"] == "ingested" for e in self.ledger.values()):
            detail = f"{relative}: duplicate of an episode already ingested"
            return self._set_aside(relative, key, quarantine.DUPLICATE, detail, catalogue)
        try:
            self._add_episode(key, Path(entry["local"]))
        except EpisodeError as error:
            return self._set_aside(relative, key, error.reason, str(error), catalogue)
        except Exception as error:  # as in ingest: one bad episode must never stop the trainer
            LOGGER.exception("episode %s could not be added to the replay buffer", relative)
            detail = f"{relative}: {type(error).__name__}: {error}"
            return self._set_aside(relative, key, quarantine.UNREADABLE, detail, catalogue)
        if catalogue:
            try:
                self.catalog.add(read_manifest(entry["local"]), relative)
            except (ManifestError, ValueError) as error:
                LOGGER.warning("episode %s trained on but not catalogued: %s", relative, error)
        return entry

    def _set_aside(self, relative: str, key: str, reason: str, detail: str, catalogue: bool = True) -> dict[str, str]:
        """Quarantine one episode and log it (in the catalog too when ``catalogue``); returns its ledger entry."""
        LOGGER.warning("quarantined episode %s (%s): %s", relative, reason, detail)
        if catalogue:
            self.catalog.reject(relative, reason, detail, key)
        return {"status": "skipped", "reason": reason, "detail": detail, "key": key}

    def _add_episode(self, key: str, local: Path) -> None:
        """Load (from the episode cache, else by decoding) and add one episode: how a resume restores the buffer."""
        self._add_decoded(key, self.episodes.load(local, key, cameras=self.pretrained.config.cameras), str(local))

    def _add_decoded(self, key: str, episode: Episode, source: str) -> None:
        """Check a decoded episode, build its transitions and features, and add it to the replay buffer."""
        check_episode(episode, source, self.pretrained.config)
        transitions = self._transitions(episode)
        features = self.features.features(episode, transitions.observed_frames())
        self.buffered[key] = _BufferedEpisode(features, episode.is_demonstration)
        for evicted in self.buffer.add(key, transitions, episode.is_demonstration):
            self.buffered.pop(evicted, None)
            self.features.forget(evicted)

    def _transitions(self, episode: Episode) -> ChunkTransitions:
        config = self.agent_config
        return build_transitions(episode, config.horizon, config.gamma, self.config.n_step, self.config.stride or None)

    # Training side --------------------------------------------------------------------------------------

    def sample_batch(self, mix: dict[str, float] | None = None) -> TransitionBatch:
        """A TransitionBatch drawn from the replay buffer by ``mix`` (default: its own), on cached encoder features."""
        sample = self.buffer.sample(self.config.batch_size, mix)
        rows = sample.transitions
        features = torch.stack(
            [
                self.buffered[key].features.row(index)
                for key, index in zip(sample.episode_keys, rows.obs_index, strict=True)
            ]
        )
        next_features = torch.stack(
            [
                self.buffered[key].features.row(index)
                for key, index in zip(sample.episode_keys, rows.next_obs_index, strict=True)
            ]
        )
        actions = np.asarray(self.pretrained.normalizer.normalize_action(rows.actions), dtype=np.float32)
        return TransitionBatch(
            features=features,
            actions=torch.from_numpy(actions),
            action_mask=torch.from_numpy(rows.action_mask.astype(bool)),
            operator_mask=torch.from_numpy(rows.operator_mask.astype(bool)),
            reward=torch.from_numpy(rows.reward.astype(np.float32)),
            next_features=next_features,
            done=torch.from_numpy(rows.done.astype(bool)),
            discount=torch.from_numpy(rows.discount.astype(np.float32)),
            is_intervention=torch.from_numpy(rows.intervention.astype(bool)),
            is_demo=torch.from_numpy(sample.category == CATEGORIES.index("demo")),
        )

    def train_step(self) -> dict[str, float]:
        """One agent update; a diverged update (NaN/inf loss or numerics) raises TrainerError, nothing is published."""
        try:
            batch = self.sample_batch()
            clone_batch = self.sample_batch(self.config.clone_mix) if self.config.clone_mix else None
            metrics = self.agent.update(batch, clone_batch)
        except (TrainingDivergedError, RuntimeError) as error:
            message = f"training stopped at update {self.step}: {type(error).__name__}: {error}"
            self.telemetry.update_status(state="failed", error=message)
            raise TrainerError(message) from error
        bad = sorted(name for name, value in metrics.items() if not np.isfinite(value))
        if bad:
            message = f"training stopped at update {self.step}: non-finite figures {bad}"
            self.telemetry.update_status(state="failed", error=message)
            raise TrainerError(message)
        self.step += 1
        now = time.monotonic()
        started, counted = self._rate
        rate = (self.step - counted) / max(now - started, 1e-9)
        if now - started > 5.0:
            self._rate = (now, self.step)
        self.telemetry.record(self.step, metrics, self.buffer.composition(), rate)
        return metrics

    def save(self) -> None:
        """Write the resume checkpoint of the current step (rank 0 only)."""
        if not self.context.is_main:
            return
        trainer_state = {
            "step": self.step,
            "pretrained": self.pretrained_source,
            "encoder_version": self.encoder_version,
            "agent_config": self.agent_config.to_dict(),
            "trainer_config": {**asdict(self.config), "work_dir": str(self.config.work_dir)},
            "buffer": self.buffer.state_dict(),
            "ledger": self.ledger,
            "published_version": self.published_version,
        }
        self.checkpoints.save(self.step, TrainingState(agent=self.agent.state_dict(), trainer=trainer_state))

    def publish(self) -> str:
        """Publish the fine-tuned policy as ``v<step>`` (manifest last) and move the publish channel; rank 0 only."""
        version = f"v{self.step:06d}"
        if not self.context.is_main:
            return version
        folder = self.config.work_dir / "published" / version
        if not (folder / MANIFEST_NAME).is_file():
            model = self.pretrained.model
            model.action_expert.load_state_dict(self.agent.policy_action_expert().state_dict())
            facts = {"step": self.step, "parent": self.pretrained.version, "encoder_version": self.encoder_version}
            save_checkpoint(model, self.pretrained.normalizer, folder, version, facts)
        self.publisher.publish(folder, version, self.config.publish_channel)
        self.published_version = version
        self.telemetry.update_status(published_version=version)
        return version

    def tick(self) -> str | None:
        """One unit of work; returns the version published in it, if any.

        Until every rank's buffer holds something it only rescans the store (at most every ``poll_interval``
        seconds). Otherwise it runs one update, rescans every ``scan_every`` updates, and every
        ``publish_every`` updates saves the resume checkpoint, then publishes. ``idle`` tells whether the
        publish period just closed brought no new episode.
        """
        if not self._ready:
            if time.monotonic() - self._last_scan >= self.config.poll_interval:
                self._scan()
            return None
        self.train_step()
        if self.step % self.config.scan_every == 0:
            self._scan()
        if self.step % self.config.publish_every:
            return None
        self.save()
        version = self.publish()
        self.idle = self._new_in_period == 0
        self._new_in_period = 0
        self._scan()
        return version

    def _scan(self) -> None:
        """Ingest what is new, settle whether every rank can train (an update is a collective), run the canary."""
        self._last_scan = time.monotonic()
        self._new_in_period += self.ingest_new()
        self._ready = self._all_agree(len(self.buffer) > 0)
        self.check_canary()

    def check_canary(self) -> None:
        """Run the canary monitor (when there is a canary channel); its last decision goes to the status JSON.

        A store that cannot be read or written now is logged, and the check runs again at the next scan.
        """
        if self.canary is None:
            return
        try:
            decision = self.canary.check()
        except (*TRANSIENT_ERRORS, FleetError) as error:
            LOGGER.warning("canary check failed, retrying at the next scan: %s", error)
            return
        if decision is not None:
            self.telemetry.update_status(canary=f"{decision.action} {decision.canary}: {decision.reason}")

    def run(
        self, max_updates: int | None = None, until_idle: bool = False, progress: Callable[[], None] | None = None
    ) -> int:
        """Train until ``max_updates`` total updates, or (``until_idle``) until a publish period brings no new episode.

        ``progress`` is called after every update (the CLI prints throttled progress lines from it). Returns the
        step reached. Without either bound it runs until interrupted. Whatever stops it with an
        error leaves the status JSON saying ``failed`` with that error, never a stale ``running``.
        """
        self.telemetry.update_status(state="running")
        try:
            self._loop(max_updates, until_idle, progress)
        except TrainerError:
            raise  # train_step already wrote the failure
        except Exception as error:
            self.telemetry.update_status(state="failed", error=f"{type(error).__name__}: {error}")
            raise
        self.save()
        self.telemetry.update_status(state="stopped", step=self.step)
        self.telemetry.flush()
        return self.step

    def _loop(self, max_updates: int | None, until_idle: bool, progress: Callable[[], None] | None) -> None:
        self._scan()
        while max_updates is None or self.step < max_updates:
            if not self._ready:
                if self._all_agree(until_idle):
                    break
                time.sleep(self.config.poll_interval)
                self._scan()
                continue
            published = self.tick()
            if progress is not None:
                progress()
            if published is not None and self._all_agree(until_idle and self.idle):
                break

    def _all_agree(self, flag: bool) -> bool:
        """True when ``flag`` is true on every rank (a collective: every rank calls it at the same point)."""
        if not self.context.enabled:
            return flag
        value = torch.tensor([0 if flag else 1], dtype=torch.int64, device=self.context.device)
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.SUM)
        return int(value.item()) == 0

    def close(self) -> None:
        """Stop the ingest workers, flush telemetry, release the event file and close the catalog."""
        self.ingest_pool.close()
        self.telemetry.close()
        self.catalog.close()

    # Resume ---------------------------------------------------------------------------------------------

    def _resume(self, resume: TrainingState) -> None:
        state = resume.trainer
        if state["encoder_version"] != self.encoder_version:
            raise TrainerError(
                f"resume checkpoint was trained on encoder {state['encoder_version']}, "
                f"the pretrained policy is {self.encoder_version}"
            )
        self.agent.load_state_dict(resume.agent)
        self.step = int(state["step"])
        self.ledger = {relative: dict(entry) for relative, entry in state["ledger"].items()}
        self.published_version = state.get("published_version", "")
        restored = self._restore_buffer(state["buffer"]["episode_keys"])
        buffer_state = {**state["buffer"], "episode_keys": restored}
        if self.context.rank:  # the checkpoint holds rank 0's sampling RNG: another rank must not replay its batches
            rng = np.random.default_rng([self.config.seed, self.context.rank, self.step])
            buffer_state["rng"] = rng.bit_generator.state
        self.buffer.load_state_dict(buffer_state)
        if self.step and self.step % self.config.publish_every == 0 and self.published_version != f"v{self.step:06d}":
            self.publish()
        LOGGER.info("resumed at update %d with %d buffered episodes", self.step, len(self.buffered))

    def summary(self) -> str:
        """One line for progress output: episodes ingested and set aside, buffer size, last published version."""
        counts = self._ledger_counts()
        return (
            f"{counts['episodes_ingested']} episodes ingested, {counts['episodes_skipped']} set aside, "
            f"{len(self.buffer)} transitions buffered, published {self.published_version or '-'}"
        )

    def _restore_buffer(self, keys: list[str]) -> list[str]:
        """Re-add a resume checkpoint's buffered episodes in their order; returns the keys restored.

        A resume never stops on an episode: one that can no longer be restored (its bag and cached decode lost or
        damaged, or refused by a newer check) is quarantined with its reason (every rank restores the same
        episodes; rank 0 writes the catalog); one the store cannot deliver now
        leaves the ledger, so the next scan ingests it again; a key the ledger does not list is not restored.
        """
        by_key = {entry["key"]: relative for relative, entry in self.ledger.items() if entry["status"] == "ingested"}
        restored = []
        for key in keys:
            relative = by_key.get(key)
            if relative is None:
                LOGGER.warning("resume checkpoint buffers episode %s that its ledger does not list; not restored", key)
                continue
            try:
                self._add_episode(key, self._localize(relative))
            except (*TRANSIENT_ERRORS, StoreError) as error:
                LOGGER.warning("buffered episode %s not restored, ingested again at the next scan: %s", relative, error)
                del self.ledger[relative]
                continue
            except EpisodeError as error:
                detail = f"cannot restore: {error}"
                self.ledger[relative] = self._set_aside(relative, key, error.reason, detail, self.context.is_main)
                continue
            except Exception as error:  # as in ingest: one bad episode must never stop the trainer
                detail = f"{relative}: cannot restore: {type(error).__name__}: {error}"
                reason = quarantine.UNREADABLE
                self.ledger[relative] = self._set_aside(relative, key, reason, detail, self.context.is_main)
                continue
            restored.append(key)
        return restored

    def _ledger_counts(self) -> dict[str, Any]:
        ingested = sum(entry["status"] == "ingested" for entry in self.ledger.values())
        reasons = Counter(
            entry["reason"] if entry["reason"] in quarantine.REASONS else "unclassified"
            for entry in self.ledger.values()
            if entry["status"] != "ingested"
        )
        return {
            "episodes_ingested": ingested,
            "episodes_skipped": len(self.ledger) - ingested,
            "quarantine": dict(sorted(reasons.items())),
        }


class _LazyEmbedder:
    """Builds the instruction embedder on first use: a resumed trainer whose features are cached never loads it."""

    def __init__(self, factory: Callable[[], TextEmbedder]) -> None:
        self._factory = factory
        self._embedder: TextEmbedder | None = None

    def embed(self, texts: list[str]) -> torch.Tensor:
        """Embeddings of ``texts`` from the underlying embedder."""
        if self._embedder is None:
            self._embedder = self._factory()
        return self._embedder.embed(texts)

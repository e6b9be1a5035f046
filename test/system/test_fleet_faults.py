"""Faults during the learning-while-deploying loop (issue 8), on real robot stacks and a real file:// fleet store.

- A robot process SIGKILLed mid-episode: the fleet reports the job failed, restarts the robot and runs the
  remaining jobs; the partial episode comes back from spool recovery as ``lwd.outcome: incomplete`` and the
  dataset decoder and the trainer refuse it.
- A corrupt policy on the channel (weights tampered in the store, or a self-consistent checkpoint whose
  weights are NaN): the robot refuses it with a logged reason, keeps serving the old version, and its
  episodes keep running.

Killing the trainer is covered by test/learner/test_trainer_service.py
(test_kill_then_resume_continues_from_the_last_checkpoint): it SIGKILLs the same ``lwd train serve``
process the demo loop runs each round, so it is not repeated here.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
import torch
from lwd_experiment.sim_robot import EpisodeJob, RobotSettings, SimRobot, sim_robot_fleet
from lwd_fleet.catalog import Catalog
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.signing import ReleaseKey, generate_key_pair
from lwd_fleet.store import FleetStore
from lwd_interfaces import topics
from lwd_interfaces.manifest import MANIFEST_NAME, build_manifest, verify_folder, write_manifest
from lwd_learner.dataset import EpisodeError, decode_episode
from lwd_learner.trainer import TrainerConfig, TrainerService
from lwd_logger.bag_reader import BagReader
from lwd_logger.recovery import valid_prefix_messages
from lwd_policy.checkpoint import POLICY_TYPE_FACT, WEIGHTS_NAME
from lwd_policy.checkpoint_tools import init_checkpoint
from lwd_policy.language import InstructionEncoder
from lwd_sim.process_fleet import ProcessFleet
from safetensors.torch import load_file, save_file

TASK = "transfer_cube"


def release_keys(root: Path) -> tuple[Path, Path]:
    """(private, public) release key files of the test's trainer, under ``root/keys`` (made on first use)."""
    private, public = root / "keys" / "release.key", root / "keys" / "release.pub"
    if not private.is_file():
        generate_key_pair(root / "keys")
    return private, public


def publisher(root: Path, store_url: str) -> PolicyPublisher:
    """A publisher that signs with the test's release key."""
    return PolicyPublisher(FleetStore(store_url), ReleaseKey.from_file(release_keys(root)[0]))


def publish_policy(root: Path, store_url: str, version: str, seed: int = 0) -> Path:
    """A random-init policy published (signed) as ``version`` on channel stable; returns its local folder."""
    folder = root / "checkpoints" / version
    init_checkpoint(folder, version, seed=seed)
    publisher(root, store_url).publish(folder, version, "stable")
    return folder


def robot_settings(store_url: str, work_dir: Path, max_steps: int) -> RobotSettings:
    """One robot on the policy alone (an operator with no patience never takes over): a random policy runs the
    whole ``max_steps``. It trusts the release key of ``work_dir``'s parent folder."""
    return RobotSettings(
        robot_id="robot0",
        store_url=store_url,
        work_dir=work_dir,
        trusted_keys=(str(release_keys(work_dir.parent)[1]),),
        tasks=(TASK,),
        max_steps=max_steps,
        patience=0,
    )


def store_episode(store: Path, episode_id: str) -> Path:
    """The committed store folder of ``episode_id`` (exactly one)."""
    folders = [path.parent for path in store.glob(f"episodes/robot0/*/{episode_id}/{MANIFEST_NAME}")]
    assert len(folders) == 1, sorted(p.name for p in store.glob("episodes/robot0/*/*"))
    return folders[0]


def flushed_commands(storage: Path) -> int:
    """Executed commands in the part of ``storage`` that crash recovery can read (a chunk still being written
    is not part of it)."""
    return sum(topic == topics.EXECUTED_COMMAND for topic, _, _ in valid_prefix_messages(storage))


KILL_DEADLINE_S = 300
"""How long the killer waits for the first flushed control step; a loaded 2-core VM can take minutes to start a
robot process."""


def kill_once_flushed(fleet: ProcessFleet, recording: Path, seen: dict[str, object]) -> None:
    """SIGKILL robot 0 as soon as the episode it records has flushed control steps to its storage file (or at the
    deadline, noted in ``seen["flushed"]``)."""
    deadline = time.monotonic() + KILL_DEADLINE_S
    seen["flushed"] = False
    while time.monotonic() < deadline and not seen["flushed"]:
        storage = list(recording.glob("*/*.mcap")) if recording.is_dir() else []
        seen["flushed"] = bool(storage) and flushed_commands(storage[0]) > 0
        time.sleep(0.05)
    seen["partials"] = sorted(path.name for path in recording.iterdir()) if recording.is_dir() else []
    seen["pid"] = fleet.pid(0)
    fleet.kill(0)


def test_robot_killed_mid_episode_restarts_and_its_partial_episode_is_never_complete(tmp_path):
    store = tmp_path / "store"
    store_url = f"file://{store}"
    publish_policy(tmp_path, store_url, "v000001")
    work = tmp_path / "robot0"
    jobs = [EpisodeJob(TASK, seed=0), EpisodeJob(TASK, seed=1)]
    fleet = sim_robot_fleet([robot_settings(store_url, work, max_steps=200)], max_restarts=3)
    seen: dict[str, object] = {}
    killer = threading.Thread(target=kill_once_flushed, args=(fleet, work / "spool" / ".recording", seen))
    killer.start()
    try:
        done, failures = fleet.run(jobs)
        restarted_pid = fleet.pid(0)
    finally:
        killer.join(timeout=KILL_DEADLINE_S + 10)
        fleet.close()

    assert seen["flushed"], f"robot 0 flushed no control step within {KILL_DEADLINE_S} s, so the kill came too early"
    # The kill hit the first episode while it was recording.
    (killed_episode,) = seen["partials"]
    assert killed_episode.startswith("robot0-")
    # The fleet went on: the killed job is reported failed, the robot was restarted once, the next job ran.
    assert [(failure.robot_id, failure.job) for failure in failures] == [("robot0", jobs[0])]
    assert "robot process died" in failures[0].error
    assert fleet.restarts == 1
    assert restarted_pid is not None and restarted_pid != seen["pid"]
    assert [(summary.seed, summary.policy_version, summary.steps) for summary in done] == [(1, "v000001", 200)]
    assert not done[0].errors
    # Nothing is left half-written in the robot's spool: recovery committed the partial, the bridge uploaded it.
    assert not list((work / "spool" / ".recording").iterdir())
    assert not [path for path in (work / "spool").iterdir() if not path.name.startswith(".")]

    # The partial episode is in the store, marked incomplete, with the messages recorded before the kill.
    partial = store_episode(store, killed_episode)
    manifest = verify_folder(partial, kind="episode")
    assert manifest.facts["lwd.outcome"] == "incomplete"
    info = BagReader(partial).info
    assert info.custom_data["lwd.outcome"] == "incomplete" and info.custom_data["lwd.recovered"] == "true"
    assert not info.complete
    assert sum(info.message_counts.values()) > 0, "the messages flushed before the kill are kept"
    assert 0 < int(info.custom_data["lwd.steps"]) < 200
    # ...and it is never used as a complete episode.
    with pytest.raises(EpisodeError, match="incomplete"):
        decode_episode(partial, "killed")
    (finished,) = [path.parent for path in store.glob(f"episodes/robot0/*/*/{MANIFEST_NAME}") if path.parent != partial]
    assert decode_episode(finished, "finished").steps == 200

    trainer = TrainerService(
        TrainerConfig(store_url=store_url, work_dir=tmp_path / "trainer", batch_size=8, agent={"hidden_dim": 32}),
        lambda checkpoint: InstructionEncoder(checkpoint.config.language_model or None),
    )
    try:
        assert trainer.ingest_new() == 1
        ledger = {Path(relative).name: entry for relative, entry in trainer.ledger.items()}
    finally:
        trainer.close()
    assert ledger[finished.name]["status"] == "ingested"
    assert ledger[killed_episode]["status"] == "skipped" and "incomplete" in ledger[killed_episode]["reason"]
    catalog = Catalog(tmp_path / "trainer" / "catalog.sqlite")
    try:
        assert [row["episode_id"] for row in catalog.episodes()] == [finished.name]
        assert [Path(row["store_path"]).name for row in catalog.rejected()] == [killed_episode]
    finally:
        catalog.close()


def tamper_weights_in_store(store: Path, version: str) -> None:
    """Flip bytes in the middle of a published version's weights (size unchanged, manifest untouched)."""
    weights = store / "policies" / version / WEIGHTS_NAME
    data = bytearray(weights.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(byte ^ 0xFF for byte in data[middle : middle + 64])
    weights.write_bytes(bytes(data))


def nan_weights_checkpoint(root: Path, version: str) -> Path:
    """A checkpoint whose manifest is consistent with its files but whose float weights are all NaN."""
    folder = root / "checkpoints" / version
    facts = init_checkpoint(folder, version, seed=3).facts
    tensors = load_file(str(folder / WEIGHTS_NAME))
    poisoned = {name: torch.full_like(t, float("nan")) if t.is_floating_point() else t for name, t in tensors.items()}
    save_file(
        poisoned, str(folder / WEIGHTS_NAME), metadata={"version": version, POLICY_TYPE_FACT: facts[POLICY_TYPE_FACT]}
    )
    (folder / MANIFEST_NAME).unlink()
    write_manifest(folder, build_manifest(folder, "policy", facts))
    verify_folder(folder, kind="policy")
    return folder


def test_corrupt_policy_on_the_channel_is_refused_and_the_robot_keeps_serving(tmp_path, caplog):
    store = tmp_path / "store"
    store_url = f"file://{store}"
    publish_policy(tmp_path, store_url, "v000001")
    robot = SimRobot(robot_settings(store_url, tmp_path / "robot0", max_steps=20))
    signed = publisher(tmp_path, store_url)
    try:
        first = robot.run_episode(TASK, seed=0)
        assert (first.policy_version, first.steps) == ("v000001", 20)

        # 1. Weights tampered in the store after publication: the download fails its manifest check.
        publish_policy(tmp_path, store_url, "v000002", seed=1)
        tamper_weights_in_store(store, "v000002")
        with caplog.at_level(logging.ERROR, logger="lwd_experiment.sim_robot"):
            tampered = robot.run_episode(TASK, seed=1)
        assert (tampered.policy_version, tampered.steps, tampered.errors) == ("v000001", 20, [])
        assert robot.runtime.version == "v000001"
        refusals = [record.getMessage() for record in caplog.records if record.name == "lwd_experiment.sim_robot"]
        assert len(refusals) == 1 and "keeping the current policy" in refusals[0]
        assert "v000002" in refusals[0] and "sha256" in refusals[0]
        assert not (tmp_path / "robot0" / "policy_cache" / "v000002").exists()
        caplog.clear()

        # 2. A checkpoint that verifies against its own manifest but has NaN weights: the runtime refuses it.
        signed.publish(nan_weights_checkpoint(tmp_path, "v000003"), "v000003", "stable")
        with caplog.at_level(logging.ERROR, logger="lwd_experiment.sim_robot"):
            poisoned = robot.run_episode(TASK, seed=2)
        assert (poisoned.policy_version, poisoned.steps, poisoned.errors) == ("v000001", 20, [])
        assert robot.runtime.version == "v000001" and robot.runtime.counters.rejected_checkpoints == 1
        refusals = [record.getMessage() for record in caplog.records if record.name == "lwd_experiment.sim_robot"]
        assert len(refusals) == 1 and "refused policy v000003" in refusals[0]

        # The robot is not wedged: the next good version is picked up between episodes.
        publish_policy(tmp_path, store_url, "v000004", seed=4)
        recovered = robot.run_episode(TASK, seed=3)
        assert (recovered.policy_version, recovered.steps) == ("v000004", 20)
    finally:
        robot.close()

    # Every episode was uploaded, attributed to the version that actually drove it.
    versions = sorted(
        verify_folder(path.parent, kind="episode").facts["lwd.policy_versions"]
        for path in store.glob(f"episodes/robot0/*/*/{MANIFEST_NAME}")
    )
    assert versions == ["v000001", "v000001", "v000001", "v000004"]

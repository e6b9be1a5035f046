"""Trainer service: ingest with skip reasons, atomic publishing, NaN stop, telemetry/status, kill + resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from lwd_fleet.catalog import Catalog
from lwd_fleet.errors import PublishError
from lwd_fleet.publisher import PolicyPublisher
from lwd_fleet.store import FleetStore
from lwd_interfaces.manifest import Manifest, build_manifest, verify_folder, write_manifest
from lwd_learner.trainer import TrainerConfig, TrainerError, TrainerService
from lwd_learner.training_state import TrainingCheckpoints
from rosbags.rosbag2 import StoragePlugin, Writer

from .conftest import TINY_VLA, HashEmbedder, build_fleet_store, commit_episode

REPO = Path(__file__).resolve().parents[2]


def service(store: Path, work: Path, **overrides) -> TrainerService:
    settings = {"publish_every": 2, "batch_size": 8, "agent": {"hidden_dim": 32}, "poll_interval": 0.01}
    settings.update(overrides)
    config = TrainerConfig(store_url=f"file://{store}", work_dir=work, **settings)
    return TrainerService(config, lambda checkpoint: HashEmbedder())


def test_a_clone_mix_gives_the_agent_a_second_batch_drawn_by_it(tmp_path, fleet_store):
    trainer = service(fleet_store, tmp_path / "work", clone_mix={"demo": 1.0}, batch_size=16)
    seen = []
    update = trainer.agent.update
    trainer.agent.update = lambda batch, clone=None: seen.append((batch, clone)) or update(batch, clone)
    assert trainer.run(max_updates=2) == 2
    trainer.close()
    assert len(seen) == 2 and all(clone is not None and bool(clone.is_demo.all()) for _, clone in seen)
    assert not all(bool(batch.is_demo.all()) for batch, _ in seen), "the main batch keeps the trainer's mix"
    plain = service(fleet_store, tmp_path / "plain")
    plain_update = plain.agent.update
    plain.agent.update = lambda batch, clone=None: seen.append((batch, clone)) or plain_update(batch, clone)
    assert plain.run(max_updates=1) == 1
    plain.close()
    assert seen[-1][1] is None


def published_versions(store: Path) -> list[str]:
    return sorted(p.name for p in (store / "policies").iterdir() if p.name != "channels")


def test_trains_publishes_every_m_updates_and_reports_status(tmp_path, fleet_store):
    trainer = service(fleet_store, tmp_path / "work")
    assert trainer.run(max_updates=5) == 5
    trainer.close()
    assert published_versions(fleet_store) == ["v000000-bc", "v000002", "v000004"]
    assert (fleet_store / "policies/channels/stable").read_text().strip() == "v000004"
    manifest = verify_folder(fleet_store / "policies/v000004", kind="policy")
    assert manifest.facts["step"] == 4 and manifest.facts["parent"] == "v000000-bc"
    status = json.loads((tmp_path / "work/telemetry/status.json").read_text())
    assert status["step"] == 5 and status["state"] == "stopped" and status["episodes_ingested"] == 3
    assert {"critic_loss", "value_loss", "actor_loss", "bc_loss", "tau_mean", "value_entropy"} <= set(status["metrics"])
    assert sum(status["buffer"].values()) == len(trainer.buffer) > 0 and status["updates_per_s"] > 0
    assert sum(status["batch_shares"].values()) == pytest.approx(1)
    assert list((tmp_path / "work/telemetry/tensorboard").glob("events.out.tfevents.*"))
    from lwd.cli import main

    assert main(["train", "status", "--work-dir", str(tmp_path / "work")]) == 0


def test_bad_agent_settings_are_a_trainer_error_that_names_them_and_publish_nothing(tmp_path, fleet_store):
    with pytest.raises(TrainerError, match=r"bad agent settings .*lam must be positive"):
        service(fleet_store, tmp_path / "work", agent={"lam": -1.0})
    assert published_versions(fleet_store) == ["v000000-bc"]


def test_published_policy_loads_with_the_fine_tuned_action_expert(tmp_path, fleet_store):
    from lwd_policy.checkpoint import load_checkpoint

    trainer = service(fleet_store, tmp_path / "work")
    trainer.run(max_updates=2)
    loaded = load_checkpoint(fleet_store / "policies/v000002")
    expected = trainer.agent.policy_action_expert().state_dict()
    for name, tensor in loaded.model.action_expert.state_dict().items():
        torch.testing.assert_close(tensor, expected[name])
    base = load_checkpoint(fleet_store / "policies/v000000-bc")
    torch.testing.assert_close(loaded.model.vision.state_dict(), base.model.vision.state_dict())


def test_a_second_policy_type_pretrains_trains_and_publishes_through_the_registry(tmp_path):
    from lwd_policy.checkpoint import load_checkpoint
    from policy.tiny_policy import TinyPolicy, TinyPolicyConfig

    config = TinyPolicyConfig(image_height=16, image_width=16, horizon=4, flow_steps=3)
    store = build_fleet_store(tmp_path, policy_config=config)
    trainer = service(store, tmp_path / "work")
    assert trainer.run(max_updates=2) == 2
    trainer.close()
    assert isinstance(trainer.pretrained.model, TinyPolicy) and trainer.features.frames_encoded > 0
    published = load_checkpoint(store / "policies/v000002", expected=config)
    assert isinstance(published.model, TinyPolicy) and published.manifest.facts["policy_type"] == "TinyMLPPolicy"
    expected = trainer.agent.policy_action_expert().state_dict()
    for name, tensor in published.model.action_expert.state_dict().items():
        torch.testing.assert_close(tensor, expected[name])


def test_bad_episodes_are_skipped_with_a_reason_and_training_goes_on(tmp_path, fleet_store):
    commit_episode(fleet_store, "unfinished", steps=6, outcome="incomplete", image_shape=(16, 16))
    tampered = commit_episode(fleet_store, "tampered", steps=6, image_shape=(16, 16))
    (storage,) = tampered.glob("*.mcap")
    storage.write_bytes(storage.read_bytes()[:-10] + b"0123456789")
    foreign = fleet_store / "episodes/robot0/2026-11-25/foreign"
    empty = Writer(foreign, version=9, storage_plugin=StoragePlugin.MCAP)  # a bag with no LWD custom data
    empty.open()
    empty.close()
    write_manifest(foreign, build_manifest(foreign, "episode"))
    nan_bag = commit_episode(fleet_store, "uncommitted", steps=6, image_shape=(16, 16))
    (nan_bag / "manifest.json").unlink()
    trainer = service(fleet_store, tmp_path / "work")
    trainer.run(max_updates=1)
    details = {path.rsplit("/", 1)[1]: entry["detail"] for path, entry in trainer.ledger.items()}
    assert "incomplete episode" in details["unfinished"]
    assert "fails its sha256 check" in details["tampered"]
    assert "foreign bag" in details["foreign"]
    assert "uncommitted" not in details
    assert sum(entry["status"] == "ingested" for entry in trainer.ledger.values()) == 3
    status = json.loads((tmp_path / "work/telemetry/status.json").read_text())
    assert status["episodes_skipped"] == 3
    assert status["quarantine"] == {"checksum_mismatch": 1, "foreign_bag": 1, "incomplete": 1}
    catalog = Catalog(tmp_path / "work/catalog.sqlite")
    assert sorted(row["episode_id"] for row in catalog.episodes()) == ["demo0", "dep0", "dep1"]
    rejected = {row["store_path"].rsplit("/", 1)[1]: (row["reason"], row["detail"]) for row in catalog.rejected()}
    assert rejected == {
        "unfinished": ("incomplete", details["unfinished"]),
        "tampered": ("checksum_mismatch", details["tampered"]),
        "foreign": ("foreign_bag", details["foreign"]),
    }


def test_nan_loss_stops_training_before_anything_is_published(tmp_path, fleet_store):
    trainer = service(fleet_store, tmp_path / "work", publish_every=50, agent={"hidden_dim": 32, "lr": 1e30})
    with pytest.raises(TrainerError, match="training stopped at update"):
        trainer.run(max_updates=40)
    assert trainer.step < 40
    assert published_versions(fleet_store) == ["v000000-bc"]
    assert (fleet_store / "policies/channels/stable").read_text().strip() == "v000000-bc"
    status = json.loads((tmp_path / "work/telemetry/status.json").read_text())
    assert status["state"] == "failed" and "training stopped at update" in status["error"]


def test_a_reader_never_sees_a_channel_without_a_manifest(tmp_path, fleet_store):
    publisher = PolicyPublisher(FleetStore(f"file://{fleet_store}"))
    seen, problems, done = [], [], threading.Event()

    def reader() -> None:
        while not done.is_set():
            version = publisher.channel_version("stable")
            seen.append(version)
            try:
                verify_folder(fleet_store / "policies" / version, kind="policy")
            except Exception as error:
                problems.append(f"{version}: {error}")
            time.sleep(0.002)

    thread = threading.Thread(target=reader)
    thread.start()
    trainer = service(fleet_store, tmp_path / "work", publish_every=1)
    trainer.run(max_updates=6)
    done.set()
    thread.join()
    assert problems == []
    assert "v000006" in published_versions(fleet_store) and len(seen) > 10
    with pytest.raises(PublishError, match="has no manifest"):
        publisher.move_channel("stable", "v999999")
    with pytest.raises(PublishError, match="holds version 'v000000-bc', not 'v000006'"):
        publisher.publish(fleet_store / "policies/v000000-bc", "v000006")
    before = (fleet_store / "policies/v000004/manifest.json").stat().st_mtime_ns
    publisher.publish(tmp_path / "work/published/v000004", "v000004", "canary")
    assert (fleet_store / "policies/v000004/manifest.json").stat().st_mtime_ns == before
    assert publisher.channel_version("canary") == "v000004"
    assert not list((fleet_store / "policies/channels").glob(".*.tmp"))


def test_until_idle_stops_after_a_publish_period_without_new_episodes(tmp_path, fleet_store):
    trainer = service(fleet_store, tmp_path / "work", publish_every=3)
    assert trainer.run(until_idle=True) == 6
    assert published_versions(fleet_store)[-2:] == ["v000003", "v000006"]


def test_an_existing_empty_store_is_watched_and_a_missing_one_is_never_created(tmp_path, fleet_store):
    from lwd_fleet.errors import StoreError

    empty = tmp_path / "empty"
    empty.mkdir()
    trainer = service(empty, tmp_path / "work", pretrained=str(fleet_store / "policies/v000000-bc"))
    assert trainer.run(until_idle=True) == 0
    trainer.close()
    assert list(empty.iterdir()) == []
    with pytest.raises(StoreError, match="does not exist"):
        service(tmp_path / "typo", tmp_path / "work2")
    assert not (tmp_path / "typo").exists()


def test_kill_then_resume_continues_from_the_last_checkpoint(tmp_path, fleet_store):
    work = tmp_path / "work"
    command = [
        sys.executable, "-m", "lwd.cli", "train", "serve", "--store", f"file://{fleet_store}",
        "--work-dir", str(work), "--publish-every", "2", "--batch-size", "8", "--agent", '{"hidden_dim": 32}',
        "--max-updates", "100000",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    checkpoints = TrainingCheckpoints(work / "checkpoints")
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            latest = checkpoints.latest()
            if latest is not None and json.loads((latest / "trainer.json").read_text())["step"] >= 4:
                break
            time.sleep(0.2)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        output = process.communicate()[0].decode()
    assert process.returncode == -signal.SIGKILL, output
    saved = checkpoints.load_latest()
    saved_step = saved.trainer["step"]
    assert saved_step >= 4, output

    def no_embedder(checkpoint):
        raise AssertionError("a resumed trainer must take features from the cache, not re-encode")

    config = TrainerConfig(
        store_url=f"file://{fleet_store}", work_dir=work, publish_every=2, batch_size=8, agent={"hidden_dim": 32}
    )
    resumed = TrainerService(config, no_embedder)
    assert resumed.step == saved_step
    assert resumed.buffer.episode_keys() == saved.trainer["buffer"]["episode_keys"]
    for key, tensor in resumed.agent.state_dict().items():
        torch.testing.assert_close(tensor, saved.agent[key], msg=key)
    assert resumed.episodes.decoded == 0 and resumed.features.frames_encoded == 0
    target = saved_step + 2 - saved_step % 2
    assert resumed.run(max_updates=target) == target
    assert f"v{target:06d}" in published_versions(fleet_store)
    assert (fleet_store / "policies/channels/stable").read_text().strip() == f"v{target:06d}"
    assert np.all([entry["status"] == "ingested" for entry in resumed.ledger.values()])


def test_cli_bc_pretrains_and_publish_puts_it_on_a_channel(tmp_path, fleet_store, capsys):
    from lwd.cli import main

    vla_config = tmp_path / "vla.json"
    vla_config.write_text(json.dumps(TINY_VLA))
    out = tmp_path / "bc"
    code = main(
        ["train", "bc", "--episodes", f"file://{fleet_store}", "--out", str(out), "--vla-config", str(vla_config),
         "--steps", "2", "--batch-size", "4", "--version", "v000000-cli", "--cache-dir", str(tmp_path / "cache")]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "3 usable episodes" in printed and "progress bc 2/2 steps" in printed and "bc_loss" in printed
    assert verify_folder(out, kind="policy").facts["version"] == "v000000-cli"
    assert main(["train", "publish", "--store", f"file://{fleet_store}", "--checkpoint", str(out)]) == 0
    assert (fleet_store / "policies/channels/stable").read_text().strip() == "v000000-cli"
    assert main(["train", "bc", "--episodes", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "argument --episodes" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_a_trainer_sharing_bc_pretrainings_cache_folder_decodes_no_episode_again(tmp_path, fleet_store):
    from lwd.cli import main

    vla_config = tmp_path / "vla.json"
    vla_config.write_text(json.dumps(TINY_VLA))
    cache = tmp_path / "shared-cache"
    assert main(["train", "bc", "--episodes", f"file://{fleet_store}", "--out", str(tmp_path / "bc"), "--vla-config",
                 str(vla_config), "--steps", "1", "--batch-size", "4", "--cache-dir", str(cache)]) == 0  # fmt: skip
    trainer = service(fleet_store, tmp_path / "work", cache_dir=str(cache))
    assert trainer.run(max_updates=2) == 2
    trainer.close()
    assert trainer.episodes.decoded == 0 and trainer.episodes.hits == 3
    assert list((cache / "features").glob("*.safetensors")) and not (tmp_path / "work" / "cache").exists()


@pytest.mark.parametrize("store_backend", ["memory", "sftp", "s3"], indirect=True)
def test_remote_store_episodes_and_pretrained_policy_are_staged_locally(tmp_path, fleet_store, store_backend):
    store_backend.upload_tree(fleet_store)
    config = TrainerConfig(
        store_url=store_backend.url,
        work_dir=tmp_path / "work",
        publish_every=2,
        batch_size=8,
        agent={"hidden_dim": 32},
    )
    trainer = TrainerService(config, lambda checkpoint: HashEmbedder())
    assert trainer.run(max_updates=2) == 2
    assert sum(entry["status"] == "ingested" for entry in trainer.ledger.values()) == 3
    assert (tmp_path / "work/staging/policies/v000000-bc/manifest.json").is_file()
    assert len(list((tmp_path / "work/staging/episodes").glob("*/*/*/manifest.json"))) == 3
    assert store_backend.get("policies/channels/stable").decode().strip() == "v000002"
    published = store_backend.download("policies/v000002", tmp_path / "published")
    assert verify_folder(published, kind="policy").facts["parent"] == "v000000-bc"


def catalogue_outcomes(catalog: Catalog, version: str, successes: int, failures: int) -> None:
    """Deployment episodes run on ``version`` with known outcome labels, straight into the catalog."""
    for index in range(successes + failures):
        facts = {
            "lwd.robot_id": "robot9",
            "lwd.episode_id": f"{version}-{index}",
            "lwd.task": "transfer_cube",
            "lwd.episode_kind": "deployment",
            "lwd.policy_versions": version,
            "lwd.outcome": "success" if index < successes else "failure",
            "lwd.steps": 10,
            "lwd.interventions": 0,
        }
        catalog.add(Manifest("episode", (), facts), f"episodes/robot9/2026-11-25/{version}-{index}")


def test_with_a_canary_channel_versions_go_to_the_canary_first_and_a_worse_one_is_rolled_back(tmp_path, fleet_store):
    trainer = service(fleet_store, tmp_path / "work", canary_channel="canary", canary_window=20)
    try:
        assert trainer.run(max_updates=2) == 2
        publisher = trainer.publisher
        assert (publisher.channel_version("stable"), publisher.channel_version("canary")) == ("v000000-bc", "v000002")
        catalogue_outcomes(trainer.catalog, "v000000-bc", 17, 3)
        catalogue_outcomes(trainer.catalog, "v000002", 2, 18)
        trainer.check_canary()
        assert (publisher.channel_version("stable"), publisher.channel_version("canary")) == ("v000000-bc",) * 2
        status = json.loads((tmp_path / "work/telemetry/status.json").read_text())
        assert status["canary"].startswith("rollback v000002: the canary's interval lies below the stable's")
        assert json.loads((fleet_store / "rollouts" / "v000002.json").read_text())["action"] == "rollback"
    finally:
        trainer.close()


def test_a_trainer_without_a_canary_channel_publishes_on_stable_and_runs_no_monitor(tmp_path, fleet_store):
    trainer = service(fleet_store, tmp_path / "work")
    assert trainer.canary is None and trainer.config.publish_channel == "stable"
    trainer.close()
    with pytest.raises(ValueError, match="canary_channel must differ"):
        TrainerConfig(store_url=f"file://{fleet_store}", work_dir=tmp_path / "w", canary_channel="stable")
    with pytest.raises(ValueError, match="canary margin"):
        TrainerConfig(store_url=f"file://{fleet_store}", work_dir=tmp_path / "w", canary_margin=1.5)

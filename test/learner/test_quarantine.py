"""Quarantine, not crash: each kind of bad bag, committed between good ones, is set aside with a named reason by
trainer ingest, BC pretraining and the catalog; the good ones are all used and a restart neither retries nor crashes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from lwd_fleet.catalog import Catalog
from lwd_interfaces.manifest import build_manifest, read_manifest, write_manifest
from lwd_learner.dataset import EpisodeError, decode_episode
from lwd_learner.episode_cache import EpisodeCache
from lwd_learner.pretrain import find_episode_folders, load_episodes, pretrain_bc
from lwd_learner.pretrain_config import PretrainConfig
from lwd_learner.telemetry import format_status
from lwd_learner.trainer import TrainerConfig, TrainerService
from lwd_policy.config import VLAConfig

from lwd_learner import episode_cache

from .conftest import TINY_VLA, HashEmbedder, commit_episode, write_episode_bag

GOOD = ["demo0", "dep0", "dep1"]
EXPECTED = {
    "a_seven_joints": "wrong_joint_count",
    "b_nan_joints": "non_finite",
    "c_zero_stamps": "non_increasing_stamps",
    "d_corrupt_chunk": "corrupt_chunk",
    "e_unfinished": "incomplete",
}
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def corrupt_zstd_chunk(bag: Path) -> None:
    """Overwrite 16 bytes inside the bag's first zstd frame (size unchanged), as a bad disk write would."""
    (storage,) = bag.glob("*.mcap")
    data = bytearray(storage.read_bytes())
    start = data.index(ZSTD_MAGIC) + 20
    data[start : start + 16] = b"\xff" * 16
    storage.write_bytes(bytes(data))


def commit_corrupt_chunk_episode(store: Path, name: str) -> Path:
    """A zstd-chunked episode whose chunk was corrupted before commit: its manifest verifies."""
    folder = commit_episode(store, name, steps=6, image_shape=(16, 16), compression="zstd")
    corrupt_zstd_chunk(folder)
    write_manifest(folder, build_manifest(folder, "episode", read_manifest(folder).facts))
    return folder


@pytest.fixture
def mixed_store(fleet_store: Path) -> Path:
    """The fleet store's three good episodes with one bad episode of each kind committed between them."""
    commit_episode(fleet_store, "a_seven_joints", steps=8, joints=7, image_shape=(16, 16))
    commit_episode(fleet_store, "b_nan_joints", steps=8, nan_step=3, kind="demonstration", image_shape=(16, 16))
    commit_episode(fleet_store, "c_zero_stamps", steps=30, zero_stamps=True, image_shape=(16, 16))
    commit_corrupt_chunk_episode(fleet_store, "d_corrupt_chunk")
    commit_episode(fleet_store, "e_unfinished", steps=6, outcome="incomplete", image_shape=(16, 16))
    return fleet_store


def service(store: Path, work: Path) -> TrainerService:
    config = TrainerConfig(
        store_url=f"file://{store}", work_dir=work, publish_every=2, batch_size=8, agent={"hidden_dim": 32}
    )
    return TrainerService(config, lambda checkpoint: HashEmbedder())


def by_name(ledger: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {key.rsplit("/", 1)[1]: entry for key, entry in ledger.items()}


def test_header_stamps_that_collapse_steps_are_refused_not_decoded_as_one_step(tmp_path):
    bag = write_episode_bag(tmp_path / "zero", steps=30, zero_stamps=True)
    with pytest.raises(EpisodeError, match=r"zero: .*stamps") as caught:
        decode_episode(bag, "k")
    assert caught.value.reason == "non_increasing_stamps"


def test_a_corrupt_zstd_chunk_is_an_episode_error_naming_the_bag(tmp_path):
    bag = write_episode_bag(tmp_path / "chunky", steps=6, compression="zstd")
    assert decode_episode(bag, "k").steps == 6
    corrupt_zstd_chunk(bag)
    with pytest.raises(EpisodeError, match="chunky") as caught:
        decode_episode(bag, "k")
    assert caught.value.reason == "corrupt_chunk"


def test_trainer_quarantines_each_bad_bag_uses_every_good_one_and_never_retries(tmp_path, mixed_store, monkeypatch):
    work = tmp_path / "work"
    trainer = service(mixed_store, work)
    assert trainer.run(max_updates=2) == 2
    trainer.close()
    ledger = by_name(trainer.ledger)
    assert sorted(name for name, entry in ledger.items() if entry["status"] == "ingested") == GOOD
    assert {name: ledger[name]["reason"] for name in EXPECTED} == EXPECTED
    assert all(name in ledger[name]["detail"] for name in EXPECTED), ledger
    status = json.loads((work / "telemetry/status.json").read_text())
    assert status["state"] == "stopped" and status["episodes_ingested"] == 3
    assert status["quarantine"] == {reason: 1 for reason in EXPECTED.values()}
    assert "quarantine: corrupt_chunk 1, incomplete 1, non_finite 1" in format_status(status)
    catalog = Catalog(work / "catalog.sqlite")
    assert {row["store_path"].rsplit("/", 1)[1]: row["reason"] for row in catalog.rejected()} == EXPECTED
    assert sorted(row["episode_id"] for row in catalog.episodes()) == GOOD
    catalog.close()

    # A restart that lost its resume checkpoint (a crash before the first save) must not decode a bad bag again.
    shutil.rmtree(work / "checkpoints")
    decoded = []

    def spy(bag_dir, key, cameras=None):
        decoded.append(Path(bag_dir).name)
        return decode_episode(bag_dir, key, cameras)

    monkeypatch.setattr(episode_cache, "decode_episode", spy)
    restarted = service(mixed_store, work)
    assert restarted.run(max_updates=2) == 2
    restarted.close()
    assert decoded == []
    ledger = by_name(restarted.ledger)
    assert {name: ledger[name]["reason"] for name in EXPECTED} == EXPECTED
    assert sorted(name for name, entry in ledger.items() if entry["status"] == "ingested") == GOOD


def test_bc_pretraining_sets_bad_bags_aside_and_trains_on_the_good_ones(tmp_path, mixed_store):
    vla = VLAConfig.from_dict(TINY_VLA)
    rejected = []
    folders = find_episode_folders(f"file://{mixed_store}")
    episodes = load_episodes(
        folders, EpisodeCache(tmp_path / "cache"), vla.cameras, policy=vla, on_reject=rejected.append
    )
    assert sorted(episode.episode_id for episode in episodes) == GOOD
    assert {Path(item.path).name: item.reason for item in rejected} == EXPECTED
    assert all(Path(item.path).name in item.message for item in rejected)
    _, normalizer = pretrain_bc(episodes, vla, HashEmbedder(), PretrainConfig(steps=1, batch_size=4))
    assert np.isfinite(normalizer.to_dict()["proprio"]["scale"]).all()


def test_cli_bc_names_the_bad_bags_and_exits_0(tmp_path, mixed_store, capsys):
    from lwd.cli import main

    vla_config = tmp_path / "vla.json"
    vla_config.write_text(json.dumps(TINY_VLA))
    code = main(
        ["train", "bc", "--episodes", f"file://{mixed_store}", "--out", str(tmp_path / "bc"), "--vla-config",
         str(vla_config), "--steps", "1", "--batch-size", "4", "--cache-dir", str(tmp_path / "cache")]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "3 usable episodes" in printed
    assert "5 set aside" in printed and "wrong_joint_count 1" in printed and "non_finite 1" in printed


def test_store_ls_and_stats_do_not_count_episodes_ingest_rejected(tmp_path, mixed_store, capsys):
    from lwd.cli import main

    work = tmp_path / "work"
    work.mkdir()  # lwd refuses a catalog in a missing folder (a mistyped path)
    catalog_path = work / "catalog.sqlite"
    store = ["--store", f"file://{mixed_store}", "--catalog", str(catalog_path)]
    assert main(["store", "ls", *store]) == 0
    capsys.readouterr()
    trainer = service(mixed_store, work)
    trainer.ingest_new()
    trainer.close()
    assert main(["store", "ls", *store]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in GOOD) and not any(name in listed for name in EXPECTED), listed
    assert main(["store", "stats", *store]) == 0
    stats = capsys.readouterr().out
    assert sum(int(line.split()[-3]) for line in stats.splitlines()[2:] if line.startswith("robot0")) == 3, stats
    assert main(["store", "ls", "--rejected", *store]) == 0
    quarantine = capsys.readouterr().out
    for name, reason in EXPECTED.items():
        (line,) = [line for line in quarantine.splitlines() if name in line]
        assert reason in line


def test_a_resume_quarantines_a_buffered_episode_it_can_no_longer_restore_and_goes_on(tmp_path, fleet_store):
    work = tmp_path / "work"
    trainer = service(fleet_store, work)
    assert trainer.run(max_updates=2) == 2
    trainer.close()
    storage = fleet_store / "episodes/robot0/2026-11-25/dep0/dep0.mcap"
    storage.write_bytes(storage.read_bytes()[:200])  # the bag is damaged on disk after ingest ...
    for cached in (work / "cache/episodes").glob("*.npz"):
        cached.unlink()  # ... and its decoded copy is gone
    resumed = service(fleet_store, work)
    assert resumed.step == 2
    assert resumed.run(max_updates=4) == 4
    resumed.close()
    ledger = by_name(resumed.ledger)
    assert ledger["dep0"]["status"] == "skipped" and ledger["dep0"]["reason"] == "corrupt_bag"
    assert "cannot restore" in ledger["dep0"]["detail"] and "dep0" in ledger["dep0"]["detail"]
    assert sorted(name for name, entry in ledger.items() if entry["status"] == "ingested") == ["demo0", "dep1"]
    status = json.loads((work / "telemetry/status.json").read_text())
    assert status["state"] == "stopped" and status["quarantine"] == {"corrupt_bag": 1}

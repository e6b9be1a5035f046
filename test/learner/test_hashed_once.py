"""Hash once, while writing: the recorder's manifest carries the sha256 its writer computed as it wrote the bag,
and an episode whose bytes change after that (in the spool before upload, or in the store after it) is never
deleted locally and never ingested."""

from __future__ import annotations

import json
from pathlib import Path

from lwd_fleet.catalog import Catalog
from lwd_fleet.store import FleetStore
from lwd_interfaces import manifest as manifest_module
from lwd_interfaces.manifest import read_manifest, sha256_file
from lwd_learner.trainer import TrainerConfig, TrainerService
from lwd_logger.bridge import BagBridge
from lwd_logger.episode_facts import EpisodeInfo

from .conftest import HashEmbedder


def flip_byte(path: Path) -> None:
    """Change one byte in the middle of a file, keeping its size (a bad disk write, a stray writer)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_commit_takes_the_bags_sha256_from_the_writer_instead_of_reading_the_bag(record_episode, monkeypatch):
    hashed_at_commit = []
    original = manifest_module.sha256_stream

    def spy(stream):
        hashed_at_commit.append(Path(stream.name).name)
        return original(stream)

    monkeypatch.setattr(manifest_module, "sha256_stream", spy)
    for compression in ("none", "zstd"):
        info = EpisodeInfo(episode_id=f"e{compression}", robot_id="robot7", task="transfer_cube")
        folder = record_episode(n=12, compression=compression, info=info)
        entries = {entry.path: entry for entry in read_manifest(folder).files}
        storage = folder / f"{folder.name}.mcap"
        assert entries[storage.name].sha256 == original(open(storage, "rb"))[0]
        assert entries[storage.name].size == storage.stat().st_size
    assert hashed_at_commit == ["metadata.yaml", "metadata.yaml"]


def test_an_episode_whose_bytes_change_after_the_recorder_hashed_them_is_never_deleted_locally_nor_ingested(
    record_episode, spool, fleet_store, tmp_path
):
    folders = {}
    for name in ("a1", "b2"):
        info = EpisodeInfo(episode_id=name, robot_id="robot7", task="transfer_cube", policy_version="v000001")
        folders[name] = record_episode(n=6, info=info)
    flip_byte(folders["a1"] / "a1.mcap")
    changed = (folders["a1"] / "a1.mcap").read_bytes()

    # In the spool before upload: the bridge sees the bytes it sends are not the hashed ones, keeps them aside.
    store = FleetStore(f"file://{fleet_store}")
    bridge = BagBridge(spool, store)
    (uploaded,) = bridge.upload_pending()
    assert uploaded.episode_id == "b2" and bridge.quarantined == 1
    kept = spool.root / ".quarantine" / "a1"
    assert (kept / "a1.mcap").read_bytes() == changed
    reason = json.loads((spool.root / ".quarantine" / "a1.reason.json").read_text())
    assert reason["reason"] == "checksum_mismatch" and "a1.mcap fails its sha256 check" in reason["detail"]
    assert not list(fleet_store.glob("episodes/robot7/*/a1"))
    assert bridge.upload_pending() == [] and (kept / "a1.mcap").is_file()

    # In the store after upload: ingest verifies every file against the manifest and sets it aside by name.
    flip_byte(fleet_store / uploaded.key / "b2.mcap")
    config = TrainerConfig(store_url=f"file://{fleet_store}", work_dir=tmp_path / "work", agent={"hidden_dim": 32})
    trainer = TrainerService(config, lambda checkpoint: HashEmbedder())
    trainer.ingest_new()
    trainer.close()
    entry = trainer.ledger[uploaded.key]
    assert entry["status"] == "skipped" and entry["reason"] == "checksum_mismatch"
    assert "b2.mcap fails its sha256 check" in entry["detail"]
    assert all(e["status"] == "ingested" for key, e in trainer.ledger.items() if key != uploaded.key)
    assert uploaded.sha256 not in trainer.buffered and not any("a1" in key for key in trainer.ledger)
    catalog = Catalog(tmp_path / "work" / "catalog.sqlite")
    assert [row["reason"] for row in catalog.rejected()] == ["checksum_mismatch"]
    assert "b2" not in {row["episode_id"] for row in catalog.episodes()}
    catalog.close()
    assert sha256_file(kept / "a1.mcap") != read_manifest(kept).files[0].sha256

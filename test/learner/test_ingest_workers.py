"""Ingest that scales out: verify + decode in worker processes, results added in store-key order. An ingest worker
killed mid-batch loses nothing: its episodes are submitted again, none is quarantined or ingested twice, and the
buffer is the one in-process ingest builds."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from learner.ingest_kill import die_once_on_victim, marker  # importable by name in spawned workers
from lwd_fleet.catalog import Catalog
from lwd_learner.ingest import IngestPool
from lwd_learner.trainer import TrainerConfig, TrainerService

from .conftest import HashEmbedder, commit_episode


def service(store: Path, work: Path, workers: int) -> TrainerService:
    config = TrainerConfig(
        store_url=f"file://{store}", work_dir=work, agent={"hidden_dim": 32}, ingest_workers=workers, batch_size=8
    )
    return TrainerService(config, lambda checkpoint: HashEmbedder())


def test_an_ingest_worker_killed_mid_batch_loses_nothing(tmp_path, fleet_store):
    for index in range(3):
        commit_episode(fleet_store, f"dep{index + 2}", steps=10 + index, image_shape=(16, 16))
    reference = service(fleet_store, tmp_path / "inline", workers=0)
    assert reference.ingest_new() == 6
    reference.close()

    trainer = service(fleet_store, tmp_path / "pool", workers=2)
    trainer.ingest_pool.close()
    trainer.ingest_pool = IngestPool(2, prepare=die_once_on_victim)
    assert trainer.ingest_new() == 6
    trainer.close()
    assert marker(str(trainer.episodes.cache_dir)).exists() and trainer.ingest_pool.restarts == 1
    assert [entry["status"] for entry in trainer.ledger.values()] == ["ingested"] * 6
    assert trainer.ledger.keys() == reference.ledger.keys()
    keys = trainer.buffer.state_dict()["episode_keys"]
    assert keys == reference.buffer.state_dict()["episode_keys"] and len(set(keys)) == 6
    for key in keys:
        ours, theirs = trainer.buffered[key].features, reference.buffered[key].features
        assert torch.equal(ours.values, theirs.values) and (ours.frames == theirs.frames).all()
    catalog = Catalog(tmp_path / "pool" / "catalog.sqlite")
    assert len(catalog.episodes()) == 6 and catalog.rejected() == []
    catalog.close()
    status = json.loads((tmp_path / "pool" / "telemetry" / "status.json").read_text())
    assert status["ingest_backlog"] == 0 and status["ingest_frames_per_s"] > 0 and status["quarantine"] == {}
    assert trainer.ingest_new() == 0  # nothing is ingested twice


def test_episodes_whose_worker_keeps_dying_wait_for_the_next_scan_and_are_not_quarantined(tmp_path, fleet_store):
    trainer = service(fleet_store, tmp_path / "work", workers=1)
    trainer.ingest_pool.close()
    trainer.ingest_pool = IngestPool(1, prepare=die_once_on_victim, max_restarts=0)
    trainer.ingest_new()
    assert "dep1" not in {Path(key).name for key in trainer.ledger} and trainer.backlog >= 1
    trainer.ingest_new()
    trainer.close()
    assert [entry["status"] for entry in trainer.ledger.values()] == ["ingested"] * 3
    assert trainer.backlog == 0

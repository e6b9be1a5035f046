"""Data-parallel training: two torchrun replicas (gloo, CPU) stay identical while they train on different data,
and split the ingest of new episodes between them while their replay buffers stay the same."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from lwd_fleet.catalog import Catalog
from lwd_learner.distributed import DistributedContext
from safetensors.torch import load_file
from torch import nn

from .conftest import commit_episode

REPLICA = Path(__file__).with_name("ddp_replica.py")
INGEST_REPLICA = Path(__file__).with_name("ddp_ingest_replica.py")


def run_replicas(*arguments: str, timeout: float, replica: Path = REPLICA) -> None:
    """Run two torchrun replicas of ``replica``; kill their whole process group if they outlive ``timeout``."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2",
        str(replica), *arguments,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"the replicas hung for {timeout} s: {stdout[-2000:]}{stderr[-2000:]}") from None
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]


def test_two_gloo_replicas_keep_identical_parameters(tmp_path):
    run_replicas(str(tmp_path), timeout=240)
    first, second = (load_file(str(tmp_path / f"rank{rank}.safetensors")) for rank in (0, 1))
    logs = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [log["world"] for log in logs] == [2, 2]
    assert not torch.equal(first["initial"], second["initial"]), "replicas must start from different seeds"
    assert logs[0]["losses"] != logs[1]["losses"], "replicas must see different data"
    parameters = [key for key in first if key != "initial"]
    assert parameters and set(parameters) == set(second) - {"initial"}
    for key in parameters:
        assert torch.equal(first[key], second[key]), f"{key} differs between replicas"
    assert not torch.equal(first["module.actor.net.0.weight"], first["initial"])


def test_single_process_context_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    context = DistributedContext.from_environment()
    assert (context.rank, context.world_size, context.is_main, context.enabled) == (0, 1, True, False)
    parameter = nn.Parameter(torch.ones(3))
    parameter.grad = torch.full((3,), 2.0)
    context.average_gradients([parameter])
    assert parameter.grad.tolist() == [2.0, 2.0, 2.0]


def test_a_nan_on_one_rank_stops_every_rank_at_the_same_update_naming_that_rank(tmp_path):
    run_replicas(str(tmp_path), "1", timeout=120)
    logs = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    for log in logs:
        assert "non-finite loss at update 1 on rank(s) [1]" in log["diverged"]
        assert len(log["losses"]) == 1  # update 0 ran everywhere; update 1 was skipped everywhere
    assert "critic_loss=nan" in logs[1]["diverged"]
    first, second = (load_file(str(tmp_path / f"rank{rank}.safetensors")) for rank in (0, 1))
    for key in set(first) - {"initial"}:
        assert torch.equal(first[key], second[key]), f"{key} differs between replicas"


def test_two_ranks_split_ingest_and_hold_the_same_buffer(tmp_path, fleet_store):
    for number, steps in enumerate((16, 22, 14)):
        commit_episode(fleet_store, f"extra{number}", steps=steps, image_shape=(16, 16))
    keys = sorted(str(p.parent.relative_to(fleet_store)) for p in fleet_store.glob("episodes/*/*/*/manifest.json"))
    steps = {key: json.loads((fleet_store / key / "manifest.json").read_text())["facts"]["lwd.steps"] for key in keys}
    owners = {key: index % 2 for index, key in enumerate(keys)}  # one scan finds them all: dealt out in order
    run_replicas(str(fleet_store), str(tmp_path / "work"), str(tmp_path), timeout=300, replica=INGEST_REPLICA)
    logs = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [log["world"] for log in logs] == [2, 2] and [log["step"] for log in logs] == [2, 2]
    assert [log["added"] for log in logs] == [[len(keys), 0]] * 2, "every rank adds every episode, once"
    assert logs[0]["keys"] == logs[1]["keys"] and len(set(logs[0]["keys"])) == len(keys)
    assert logs[0]["ledger"] == logs[1]["ledger"] and sorted(logs[0]["ledger"]) == keys
    for rank, log in enumerate(logs):  # each rank encoded exactly the episodes it owns, read the others' features
        owned = [key for key in keys if owners[key] == rank]
        assert log["frames_read"] == logs[0]["frames_read"]
        assert all(0 < log["frames_read"][key] < int(steps[key]) for key in keys), "only the frames transitions read"
        assert log["frames_encoded"] == sum(log["frames_read"][key] for key in owned)
        assert log["feature_disk_hits"] == len(keys) - len(owned)
    catalog = Catalog(tmp_path / "work" / "catalog.sqlite")
    assert sorted(row["store_path"] for row in catalog.episodes()) == keys
    catalog.close()

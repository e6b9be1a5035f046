"""Data-parallel training: two torchrun replicas (gloo, CPU) stay identical while they train on different data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from lwd_learner.distributed import DistributedContext
from safetensors.torch import load_file
from torch import nn

REPLICA = Path(__file__).with_name("ddp_replica.py")


def test_two_gloo_replicas_keep_identical_parameters(tmp_path):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2",
        str(REPLICA), str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
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

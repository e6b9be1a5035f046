"""Operator tools behind ``lwd policy``: create, summarize and smoke-test checkpoints.

Kept in the policy package so the CLI stays a thin argument parser.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lwd_interfaces.manifest import Manifest
from lwd_interfaces.robot import RobotDescription

from lwd_policy.checkpoint import load_checkpoint, save_checkpoint
from lwd_policy.config import VLAConfig
from lwd_policy.contract import PolicyConfig, build_policy
from lwd_policy.inference import ChunkPredictor
from lwd_policy.language import InstructionEncoder
from lwd_policy.normalization import Normalizer


def init_checkpoint(
    folder: str | os.PathLike[str], version: str, config: PolicyConfig | None = None, seed: int = 0
) -> Manifest:
    """Write a randomly initialised policy of ``config``'s type (default: the built-in VLA) with identity
    normalization: a starting point before BC pretraining."""
    config = config or VLAConfig()
    torch.manual_seed(seed)
    normalizer = Normalizer.identity(config.state_dim, config.action_dim)
    return save_checkpoint(build_policy(config), normalizer, folder, version, facts={"init_seed": seed})


def checkpoint_summary(folder: str | os.PathLike[str], robot: RobotDescription | None = None) -> dict[str, Any]:
    """Verify a checkpoint (raises CheckpointError; statistics against ``robot``'s limits if given) and describe
    it as a JSON-ready dict."""
    checkpoint = load_checkpoint(folder, robot=robot)
    return {
        "folder": str(Path(folder)),
        "version": checkpoint.version,
        "manifest_sha256": checkpoint.digest,
        "parameters": sum(p.numel() for p in checkpoint.model.parameters()),
        "normalization": checkpoint.normalizer.mode,
        "io": checkpoint.config.io_signature(),
        "flow_steps": checkpoint.config.flow_steps,
        "facts": checkpoint.manifest.facts,
    }


@dataclass(frozen=True)
class SampleReport:
    """One chunk inferred on a blank observation: its version, shape, latency and value range."""

    version: str
    shape: tuple[int, int]
    latency_ms: float
    minimum: float
    maximum: float
    finite: bool


def sample_chunk(
    folder: str | os.PathLike[str], instruction: str, seed: int = 0, encoder: InstructionEncoder | None = None
) -> SampleReport:
    """Verify a checkpoint, then time one chunk inference (after a warm-up) on a blank observation."""
    checkpoint = load_checkpoint(folder)
    config = checkpoint.config
    encoder = encoder or InstructionEncoder(config.language_model or None, dim=config.language_dim)
    predictor = ChunkPredictor(checkpoint, encoder)
    blank = predictor.blank_observation(instruction)
    generator = torch.Generator().manual_seed(seed)
    predictor.predict([blank], generator)
    start = time.perf_counter()
    chunk = predictor.predict([blank], generator)[0]
    latency_ms = (time.perf_counter() - start) * 1e3
    return SampleReport(
        version=checkpoint.version,
        shape=(int(chunk.shape[0]), int(chunk.shape[1])),
        latency_ms=latency_ms,
        minimum=float(chunk.min()),
        maximum=float(chunk.max()),
        finite=bool(np.isfinite(chunk).all()),
    )

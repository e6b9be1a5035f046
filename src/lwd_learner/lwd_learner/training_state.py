"""The trainer's resume checkpoint: agent tensors (safetensors) + trainer state (JSON), swapped in atomically.

Layout under ``<work_dir>/checkpoints``: one folder ``step-<NNNNNNNN>`` per save holding
``agent.safetensors`` and ``trainer.json``, and a ``latest`` pointer file rewritten by
temp file + rename once the folder is complete. A kill at any moment leaves either the
previous or the new checkpoint current, never a partial one. No pickle anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

AGENT_FILE = "agent.safetensors"
STATE_FILE = "trainer.json"
LATEST = "latest"


class TrainingStateError(RuntimeError):
    """A resume checkpoint is missing a file, unreadable, or inconsistent."""


@dataclass
class TrainingState:
    """What a resumed trainer needs: the agent's tensors and the trainer's JSON state."""

    agent: dict[str, torch.Tensor]
    trainer: dict[str, Any]


class TrainingCheckpoints:
    """Saves and loads the latest resume checkpoint in ``folder``, keeping the ``keep`` most recent."""

    def __init__(self, folder: str | Path, keep: int = 2) -> None:
        self.folder = Path(folder)
        self.keep = max(1, keep)

    def save(self, step: int, state: TrainingState) -> Path:
        """Write the checkpoint of ``step`` and make it the latest; returns its folder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"step-{step:08d}"
        staging = self.folder / f".step-{step:08d}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        tensors = {key: value.detach().to("cpu").contiguous() for key, value in state.agent.items()}
        save_file(tensors, str(staging / AGENT_FILE))
        (staging / STATE_FILE).write_text(json.dumps(state.trainer, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
        pointer = self.folder / f".{LATEST}.tmp"
        pointer.write_text(target.name + "\n")
        os.replace(pointer, self.folder / LATEST)
        for old in sorted(self.folder.glob("step-*"))[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return target

    def latest(self) -> Path | None:
        """The folder of the latest complete checkpoint, or None when there is none."""
        pointer = self.folder / LATEST
        if not pointer.is_file():
            return None
        target = self.folder / pointer.read_text().strip()
        if not (target / AGENT_FILE).is_file() or not (target / STATE_FILE).is_file():
            raise TrainingStateError(f"{pointer} names {target.name}, which is incomplete")
        return target

    def load_latest(self) -> TrainingState | None:
        """The latest checkpoint's contents, or None when nothing was saved yet."""
        target = self.latest()
        if target is None:
            return None
        try:
            agent = load_file(str(target / AGENT_FILE))
            trainer = json.loads((target / STATE_FILE).read_text())
        except (SafetensorError, OSError, ValueError) as error:
            raise TrainingStateError(f"resume checkpoint {target} is unreadable: {error}") from error
        return TrainingState(agent=agent, trainer=trainer)

"""How well a BC-pretrained policy fits demonstrations it was trained on versus fresh ones.

Normalized action-chunk MSE of the policy's sampled chunks (fixed noise) against the recorded
executed actions, every 10 steps, on training demonstrations from a store and on new scripted
demonstrations from validation seeds (``lwd_experiment.seed_splits``), which no training episode
used. Equal errors mean the policy underfits rather than overfits.

    .venv/bin/python bench/bc_fit.py --checkpoint runs/<demo>/pretrained --store file://runs/<demo>/fleet
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from lwd_experiment.seed_splits import split_seeds
from lwd_experiment.sim_robot import RobotSettings, SimRobot
from lwd_learner.dataset import decode_episode
from lwd_learner.observations import observation_batch
from lwd_policy.checkpoint import load_checkpoint
from lwd_policy.language import InstructionEncoder


def chunk_mse(checkpoint, encoder: InstructionEncoder, folders: list[Path]) -> float:
    """Mean normalized squared error between sampled chunks and the recorded executed actions."""
    model, normalizer, config = checkpoint.model.eval(), checkpoint.normalizer, checkpoint.config
    errors = []
    for folder in folders:
        episode = decode_episode(folder, folder.name)
        starts = np.arange(0, episode.steps - config.horizon, 10)
        batch = observation_batch(episode, starts, config, normalizer, encoder)
        index = starts[:, None] + np.arange(config.horizon)[None]
        target = torch.from_numpy(np.asarray(normalizer.normalize_action(episode.actions[index]), dtype=np.float32))
        with torch.no_grad():
            predicted = model.sample(model.encode(batch), generator=torch.Generator().manual_seed(0))
        errors.append(float((predicted - target).square().mean()))
    return float(np.mean(errors))


def demonstration_folders(store_root: Path, limit: int) -> list[Path]:
    """Committed demonstration episodes under a local store root."""
    found = []
    for manifest in sorted(store_root.glob("episodes/*/*/*/manifest.json")):
        if json.loads(manifest.read_text())["facts"].get("lwd.episode_kind") == "demonstration":
            found.append(manifest.parent)
    return found[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="BC policy folder")
    parser.add_argument("--store", required=True, help="file:// store holding its training demonstrations")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per set")
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.checkpoint)
    encoder = InstructionEncoder(checkpoint.config.language_model or None)
    train = demonstration_folders(Path(args.store.removeprefix("file://")), args.episodes)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        # Demonstrations only: this robot never loads a policy, so it needs no release key.
        settings = RobotSettings(
            "bc-fit", f"file://{root / 'fleet'}", root / "robot", max_steps=300, allow_unsigned=True
        )
        robot = SimRobot(settings)
        try:
            for seed in split_seeds("validation", args.episodes):
                robot.run_episode(("insertion", "transfer_cube")[seed % 2], seed, "demonstration")
        finally:
            robot.close()
        fresh = demonstration_folders(root / "fleet", args.episodes)
        print("| demonstrations | episodes | normalized action-chunk MSE |")
        print("|---|---|---|")
        print(f"| trained on | {len(train)} | {chunk_mse(checkpoint, encoder, train):.4f} |")
        print(f"| validation seeds | {len(fresh)} | {chunk_mse(checkpoint, encoder, fresh):.4f} |")


if __name__ == "__main__":
    main()

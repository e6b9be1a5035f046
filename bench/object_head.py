"""How well a pixel policy's object head localizes the task objects, on validation scenes.

Loads a checkpoint whose VLA has an object head (``VLAConfig.perceived_objects``), runs the scripted
operator on validation seeds of each task, and every ``--every`` steps compares the head's predicted
positions with the simulator's true ones. A grasp needs about a centimetre.

    .venv/bin/python bench/object_head.py /tmp/demo_px/pretrained --episodes 5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from lwd_experiment.seed_splits import split_seeds
from lwd_policy.checkpoint import load_checkpoint
from lwd_policy.model import POSITION_UNIT_M
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import ScriptedOperator


def localization_errors(model: torch.nn.Module, task: str, seeds: range, steps: int, every: int) -> np.ndarray:
    """Distance (mm) between predicted and true position, ``[samples, objects]``, along scripted episodes."""
    camera = model.config.cameras[0]
    driver = AlohaSimDriver(task, (camera,), model.config.image_height, model.config.image_width)
    errors = []
    for seed in seeds:
        observation = driver.reset(seed)
        operator = ScriptedOperator(seed=seed)
        operator.reset(driver)
        operator.take_over(driver, "demonstration")
        for step in range(steps):
            if step % every == 0:
                image = torch.from_numpy(observation.images[camera]).permute(2, 0, 1)[None].contiguous()
                with torch.inference_mode():
                    predicted = model.objects(model.vision.keypoints({camera: image}))[0].numpy() * POSITION_UNIT_M
                true = observation.object_poses[:, :3]
                errors.append(1000 * np.linalg.norm(predicted[: len(true)] - true, axis=-1))
            observation = driver.step(operator.command(driver))
    driver.close()
    return np.array(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a checkpoint folder of a VLA with an object head")
    parser.add_argument("--tasks", default="transfer_cube,insertion")
    parser.add_argument("--episodes", type=int, default=5, help="validation seeds per task")
    parser.add_argument("--steps", type=int, default=150, help="operator steps per episode")
    parser.add_argument("--every", type=int, default=15, help="compare every this many steps")
    args = parser.parse_args()
    model = load_checkpoint(args.checkpoint).model
    if getattr(model, "objects", None) is None:
        parser.error(f"{args.checkpoint} has no object head (VLAConfig.perceived_objects is 0)")
    print("| task | object | samples | median error mm | mean error mm | 90th percentile mm |")
    print("|---|---|---:|---:|---:|---:|")
    for task in args.tasks.split(","):
        errors = localization_errors(model, task, split_seeds("validation", args.episodes), args.steps, args.every)
        for index in range(errors.shape[1]):
            column = errors[:, index]
            print(
                f"| {task} | {index} | {len(column)} | {np.median(column):.1f} | {column.mean():.1f} "
                f"| {np.percentile(column, 90):.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

"""How well the VLA's vision trunk can localize the task objects, per image lever, with perception trained alone.

Each arm trains a fresh ``VisionEncoder`` and ``ObjectHead`` on the object-position loss alone (what
``PretrainConfig.perception_steps`` does before BC) on every frame of scripted demonstrations of both tasks
(demonstration seeds), rendered once at 192x256, and reports the head's error on validation seeds
(``lwd_experiment.seed_splits``: a study that chooses a setting never sees the test seeds), along episodes
driven by the scripted operator, along random arm walks and along replays (a demonstration's commands on another
scene, ``lwd_sim.replay``): a head that reads the arm, which in a demonstration moves to the object, instead of
the object itself is accurate on the first and not on the others. ``--train-arms operator,replay`` adds as many
replays as demonstrations to the training frames.
Arms (the issue-19 levers that change what the trunk sees, not what BC does with it):

- ``base``: the full frame resized to the policy's 96x128, as the demo's policy sees it;
- ``crop``: the table's part of the frame (``WORKSPACE``, normalized top/left/bottom/right) resized to 96x128,
  so the objects cover about 1.5 times more pixels;
- ``temperature``: ``base`` with a learnable spatial-softmax temperature per keypoint, starting at
  ``--temperature`` (the softmax sharpens without waiting for the 1x1 conv's weights to grow);
- ``shift``: ``base`` with random-shift augmentation of the training frames (each frame padded by ``--shift``
  pixels, replicating its border, and cropped back at a random offset); the labels stay, so the head is taught
  that a shifted image shows the same positions, the reason it may hurt a head of absolute positions;
- ``object-maps``: the head reads a heatmap of each object's own (a 1x1 conv on the trunk's last hidden features,
  spatial softmax with a learnable temperature starting at ``--temperature``) instead of the policy's keypoints.

    .venv/bin/python bench/perception_probe.py --demos 60 --steps 1500 --lr 1e-3
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from lwd_experiment.control_step import demonstration_commands
from lwd_experiment.seed_splits import split_seeds
from lwd_policy.config import VLAConfig
from lwd_policy.model import POSITION_UNIT_M, ObjectHead, VisionEncoder, spatial_softmax
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import ScriptedOperator
from lwd_sim.operator_trials import RandomWalkPolicy
from lwd_sim.replay import ReplayOperator

TASKS = ("transfer_cube", "insertion")
RENDER = (192, 256)
POLICY = (96, 128)
WORKSPACE = (0.2, 0.14, 0.8, 0.86)
ARMS = ("base", "crop", "temperature", "shift", "object-maps")
VALIDATION_ARMS = ("operator", "random_walk", "replay")
"""Who moves the arms in the validation episodes: the scripted operator, as in the training demonstrations, or a
random joint walk, whose arm positions say nothing about where the objects are, or a replay (below)."""
TRAINING_ARMS = ("operator", "replay")
"""Who moves the arms in the training frames: the scripted operator (demonstrations), or a demonstration's commands
replayed open loop on another scene (``replay``: the arm moves exactly as in demonstrations, toward where another
scene's objects were, so its position says nothing about this scene's objects)."""


def frames(
    task: str, seeds: range, every: int, arms: str = "operator", max_steps: int = 300
) -> tuple[np.ndarray, np.ndarray]:
    """Top-camera frames ``[N, H, W, 3]`` and object positions ``[N, 2, 3]`` (NaN past the task's objects) along
    episodes whose arms the scripted operator drives (``arms="operator"``, as in demonstrations), a random
    joint walk (``"random_walk"``: arms that go where the objects are not), or the operator's commands for the
    previous seed's scene (``"replay"``), one sample every ``every`` steps."""
    driver = AlohaSimDriver(task, ("top",), *RENDER)
    images, positions = [], []
    for index, seed in enumerate(seeds):
        steps = max_steps
        if arms == "replay":
            replay = ReplayOperator(demonstration_commands(task, seeds[index - 1], max_steps))
            command, steps = replay.command, len(replay.commands)
        observation = driver.reset(seed)
        if arms == "random_walk":
            command = RandomWalkPolicy(np.random.default_rng(seed))
        elif arms == "operator":
            operator = ScriptedOperator(seed=seed)
            operator.reset(driver)
            operator.take_over(driver, "demonstration")
            command = operator.command
        for step in range(steps):
            if step % every == 0:
                known = np.full((2, 3), np.nan, np.float32)
                known[: len(observation.object_poses)] = observation.object_poses[:, :3]
                images.append(observation.images["top"])
                positions.append(known)
            observation = driver.step(command(driver))
            if driver.success and arms != "replay":
                break
    driver.close()
    return np.stack(images), np.stack(positions)


def policy_images(
    images: np.ndarray, crop: tuple[float, float, float, float] | None, chunk: int = 1000
) -> torch.Tensor:
    """uint8 ``[N, 3, 96, 128]``: the frames, cropped to ``crop`` when given, resized as the policy resizes
    (``chunk`` frames at a time, so tens of thousands of full-size frames never sit in memory as floats)."""
    parts = []
    for first in range(0, len(images), chunk):
        pixels = torch.from_numpy(images[first : first + chunk]).permute(0, 3, 1, 2).float()
        if crop is not None:
            top, left, bottom, right = crop
            height, width = pixels.shape[2:]
            rows = slice(round(top * height), round(bottom * height))
            pixels = pixels[:, :, rows, round(left * width) : round(right * width)]
        resized = F.interpolate(pixels, size=POLICY, mode="bilinear", align_corners=False, antialias=True)
        parts.append(resized.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(parts)


class TemperedTrunk(torch.nn.Module):
    """A vision trunk whose keypoint maps are scaled by a learnable per-keypoint temperature before the softmax."""

    def __init__(self, trunk: torch.nn.Module, keypoints: int, initial: float) -> None:
        super().__init__()
        self.trunk = trunk
        self.log_scale = torch.nn.Parameter(torch.full((keypoints, 1, 1), math.log(initial)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.trunk(pixels) * self.log_scale.exp()


class ObjectMaps(torch.nn.Module):
    """One heatmap per object from the trunk's last hidden features, read out by a spatial softmax with a learnable
    temperature: each object gets a map of its own instead of sharing the policy's keypoints with the arms."""

    def __init__(self, vision: VisionEncoder, config: VLAConfig, initial: float) -> None:
        super().__init__()
        self.features = vision.trunk[:-1]
        self.maps = torch.nn.Conv2d(config.vision_channels[-1], config.perceived_objects, 1)
        self.log_scale = torch.nn.Parameter(torch.full((config.perceived_objects, 1, 1), math.log(initial)))

    def keypoints(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{"top": uint8 [B, 3, h, w]}`` → each object's expected image position ``[B, 2 × objects]``."""
        pixels = images["top"].float() / 127.5 - 1.0
        return spatial_softmax(self.maps(self.features(pixels)) * self.log_scale.exp())


def random_shift(images: torch.Tensor, pixels: int, rng: np.random.Generator) -> torch.Tensor:
    """uint8 ``[B, 3, h, w]`` frames, each moved by up to ``pixels`` in both directions (border replicated)."""
    height, width = images.shape[2:]
    padded = F.pad(images.float(), (pixels,) * 4, mode="replicate")
    rows, columns = rng.integers(2 * pixels + 1, size=(2, len(images)))
    shifted = [frame[:, r : r + height, c : c + width] for frame, r, c in zip(padded, rows, columns, strict=True)]
    return torch.stack(shifted).to(torch.uint8)


def train_arm(arm: str, images: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace) -> torch.nn.Module:
    """A vision encoder and object head trained on the position loss alone; returns them as one module."""
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    config = VLAConfig(image_height=POLICY[0], image_width=POLICY[1], perceived_objects=2)
    vision, head = VisionEncoder(config), ObjectHead(config)
    if arm == "temperature":
        vision.trunk = TemperedTrunk(vision.trunk, config.vision_keypoints, args.temperature)
    if arm == "object-maps":
        vision = ObjectMaps(vision, config, args.temperature)
        head = ObjectHead(dataclasses.replace(config, vision_keypoints=config.perceived_objects))
    model = torch.nn.ModuleDict({"vision": vision, "head": head})
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    targets = labels / POSITION_UNIT_M
    for _ in range(args.steps):
        batch = torch.from_numpy(rng.integers(len(images), size=args.batch_size))
        pixels = random_shift(images[batch], args.shift, rng) if arm == "shift" else images[batch]
        predicted = head(vision.keypoints({"top": pixels}))
        known = torch.isfinite(targets[batch])
        loss = ((predicted - torch.nan_to_num(targets[batch])) ** 2)[known].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", type=int, default=60, help="scripted demonstrations per task")
    parser.add_argument("--steps", type=int, default=1500, help="gradient steps per arm")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--temperature", type=float, default=10.0, help="initial temperature of that arm")
    parser.add_argument("--shift", type=int, default=4, help="largest random shift of that arm, in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {','.join(ARMS)}")
    parser.add_argument(
        "--train-arms",
        default="operator",
        help=f"comma-separated subset of {','.join(TRAINING_ARMS)}: who moves the arms in the training frames, "
        "each on its own --demos demonstration seeds",
    )
    args = parser.parse_args()
    training_arms = args.train_arms.split(",")
    if not set(training_arms) <= set(TRAINING_ARMS):
        parser.error(f"--train-arms takes a subset of {', '.join(TRAINING_ARMS)}")
    started = time.monotonic()
    train = [
        frames(task, split_seeds("demonstration", args.demos, offset=index * args.demos), every=1, arms=arms)
        for index, arms in enumerate(training_arms)
        for task in TASKS
    ]
    validation = {
        (task, arms): frames(task, split_seeds("validation", 10), every=15, arms=arms)
        for arms in VALIDATION_ARMS
        for task in TASKS
    }
    images = np.concatenate([part[0] for part in train])
    labels = torch.from_numpy(np.concatenate([part[1] for part in train]))
    print(f"{len(images)} training frames ({args.train_arms}), {time.monotonic() - started:.0f} s", flush=True)
    print("| arm | ms/step | validation arms | cube median mm | cube p90 mm | peg+socket median mm "
          "| peg+socket p90 mm |")  # fmt: skip
    print("|---|---:|---|---:|---:|---:|---:|")
    for arm in args.arms.split(","):
        if arm not in ARMS:
            parser.error(f"unknown arm {arm!r}; arms are {', '.join(ARMS)}")
        crop = WORKSPACE if arm == "crop" else None
        started = time.monotonic()
        model = train_arm(arm, policy_images(images, crop), labels, args)
        per_step = 1000 * (time.monotonic() - started) / args.steps
        for arms in VALIDATION_ARMS:
            cells = []
            with torch.inference_mode():
                for task in TASKS:
                    task_images, truth = validation[task, arms]
                    keypoints = model["vision"].keypoints({"top": policy_images(task_images, crop)})
                    predicted = model["head"](keypoints).numpy() * POSITION_UNIT_M
                    objects = 1 if task == "transfer_cube" else 2
                    errors = 1000 * np.linalg.norm(predicted[:, :objects] - truth[:, :objects], axis=-1)
                    cells += [f"{np.median(errors):.1f}", f"{np.percentile(errors, 90):.1f}"]
            print(f"| {arm} | {per_step:.0f} | {arms} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()

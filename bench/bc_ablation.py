"""Where BC pretraining fails: the base VLA against the same VLA also told where the cube is.

Both arms train ``lwd_learner.pretrain.pretrain_bc`` for the same steps on the same scripted
transfer-cube demonstrations (seeds 1000..) and are evaluated closed-loop on the same held-out
seeds (900000..) with no operator, executing each 20-step chunk open-loop. The ``privileged`` arm
appends the cube's initial position to the proprio vector (a sim-only input); its gain over the
``vision`` arm measures how much of the failure is the vision encoder not localizing the cube.

    .venv/bin/python bench/bc_ablation.py --demos 60 --steps 3000 --episodes 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from lwd.demo.stats import wilson_rate
from lwd_learner.dataset import Episode
from lwd_learner.pretrain import PretrainConfig, pretrain_bc
from lwd_policy.config import VLAConfig
from lwd_policy.language import InstructionEncoder
from lwd_policy.model import FlowMatchingVLA, ObservationBatch
from lwd_policy.normalization import Normalizer
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import ScriptedOperator

TASK = "transfer_cube"


def demonstrations(driver: AlohaSimDriver, seeds: range, max_steps: int) -> list[tuple[Episode, np.ndarray]]:
    """Successful scripted episodes as decoded ``Episode`` objects, each with the cube's initial position."""
    episodes = []
    for seed in seeds:
        operator = ScriptedOperator(seed=seed)
        observation = driver.reset(seed)
        cube = driver.object_poses()["box"][:3].copy()
        operator.reset(driver)
        operator.take_over(driver, "demonstration")
        images, proprio, actions = [], [], []
        for _ in range(max_steps):
            command = operator.command(driver)
            images.append(observation.images["top"])
            proprio.append(observation.qpos)
            actions.append(command)
            observation = driver.step(command)
            if driver.success:
                break
        if not driver.success:
            continue
        steps = len(actions)
        episode = Episode(
            key=f"demo-{seed}",
            episode_id=f"demo-{seed}",
            robot_id="bench",
            task=TASK,
            instruction=driver.instruction,
            episode_kind="demonstration",
            outcome="success",
            cameras=("top",),
            stamps=np.arange(steps),
            images={"top": np.stack(images)},
            proprio=np.stack(proprio),
            actions=np.stack(actions),
            intervention=np.zeros(steps, dtype=bool),
            policy_version=np.array([""] * steps),
        )
        episodes.append((episode, cube))
    return episodes


def with_cube(episode: Episode, cube: np.ndarray) -> Episode:
    """The episode with the cube's initial position appended to every proprio row."""
    proprio = np.concatenate([episode.proprio, np.repeat(cube[None], episode.steps, axis=0)], axis=1)
    return Episode(**{**episode.__dict__, "proprio": proprio})


def evaluate(
    model: FlowMatchingVLA,
    normalizer: Normalizer,
    encoder: InstructionEncoder,
    driver: AlohaSimDriver,
    seeds: range,
    privileged: bool,
    max_steps: int,
) -> list[int]:
    """Best stage reached per held-out seed, executing each chunk open-loop from zero noise."""
    config = model.config
    stages = []
    for seed in seeds:
        observation = driver.reset(seed)
        cube = driver.object_poses()["box"][:3].copy()
        best = 0
        while driver.steps < max_steps and not driver.success:
            qpos = np.concatenate([observation.qpos, cube]) if privileged else observation.qpos
            batch = ObservationBatch(
                images={"top": torch.from_numpy(observation.images["top"]).permute(2, 0, 1)[None].contiguous()},
                instruction_embedding=encoder.embed([driver.instruction]).float(),
                proprio=torch.from_numpy(np.asarray(normalizer.normalize_proprio(qpos[None]), dtype=np.float32)),
            )
            with torch.inference_mode():
                noise = torch.zeros(1, config.horizon, config.action_dim)
                chunk = normalizer.unnormalize_action(model.sample(model.encode(batch), noise=noise))[0].double()
            for action in chunk.numpy():
                observation = driver.step(action)
                best = max(best, driver.stage_reward)
                if driver.success or driver.steps >= max_steps:
                    break
        stages.append(best)
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", type=int, default=60, help="scripted demonstrations (seeds 1000..)")
    parser.add_argument("--steps", type=int, default=3000, help="BC gradient steps per arm")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--episodes", type=int, default=20, help="held-out evaluation seeds (900000..)")
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--arms", default="vision,privileged", help="comma-separated subset of vision,privileged")
    args = parser.parse_args()
    encoder = InstructionEncoder()
    driver = AlohaSimDriver(TASK, ("top",), 96, 128)
    started = time.monotonic()
    demos = demonstrations(driver, range(1000, 1000 + args.demos), args.max_steps)
    print(f"{len(demos)}/{args.demos} demonstrations succeeded ({time.monotonic() - started:.0f} s)", flush=True)
    print("| arm | held-out success (95% CI) | best stage per episode | BC time |")
    print("|---|---|---|---|")
    for arm in args.arms.split(","):
        privileged = arm == "privileged"
        episodes = [with_cube(e, cube) if privileged else e for e, cube in demos]
        config = VLAConfig(proprio_dim=17 if privileged else 14)
        started = time.monotonic()
        model, normalizer = pretrain_bc(
            episodes, config, encoder, PretrainConfig(steps=args.steps, batch_size=args.batch_size)
        )
        trained = time.monotonic() - started
        seeds = range(900_000, 900_000 + args.episodes)
        stages = evaluate(model.eval(), normalizer, encoder, driver, seeds, privileged, args.max_steps)
        rate = wilson_rate(sum(stage == driver.max_stage for stage in stages), len(stages))
        print(f"| {arm} | {rate} | {stages} | {trained:.0f} s |", flush=True)
    driver.close()


if __name__ == "__main__":
    main()

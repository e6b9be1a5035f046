"""Where BC pretraining fails: the base VLA from pixels against the same VLA also told where the cube is.

Every arm trains ``lwd_learner.pretrain.pretrain_bc`` for the same steps on the same scripted
transfer-cube demonstrations (the demonstration seeds) and is evaluated closed-loop on the same
validation seeds with no operator (``lwd_experiment.seed_splits``: this study chooses a setting, so
it never sees the test seeds), executing each 20-step chunk open-loop. The ``privileged`` arm
reads the cube's position from the simulator's perception topic (``VLAConfig.object_slots = 1``);
its gain over the ``pixels`` arm measures how much of the failure is the vision encoder not
localizing the cube. The ``pixels+object-head`` arm sees pixels only, with the object head
(``VLAConfig.perceived_objects``) trained on the recorded cube positions as labels. Each arm is
evaluated at every ``--noise-scales`` value (the flow's starting
noise, ``RuntimeConfig.noise_scale``: 0 deterministic, 1 full sampling).

    .venv/bin/python bench/bc_ablation.py --demos 60 --steps 3000 --episodes 20
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from lwd_experiment.seed_splits import split_seeds
from lwd_interfaces.success_rate import wilson_rate
from lwd_learner.dataset import Episode
from lwd_learner.pretrain import pretrain_bc
from lwd_learner.pretrain_config import PretrainConfig
from lwd_policy.config import VLAConfig
from lwd_policy.contract import ObservationBatch, PolicyModel
from lwd_policy.language import InstructionEncoder
from lwd_policy.model import POSITION_UNIT_M
from lwd_policy.normalization import Normalizer
from lwd_policy.proprio import policy_state
from lwd_sim.aloha import AlohaSimDriver
from lwd_sim.operator import ScriptedOperator
from lwd_sim.replay import ReplayOperator

TASK = "transfer_cube"
ARMS: dict[str, tuple[dict[str, int], dict[str, float]]] = {
    "pixels": ({}, {}),
    "pixels+object-head": ({"perceived_objects": 1}, {}),
    "pixels+object-head-x100": ({"perceived_objects": 1}, {"auxiliary_weight": 100.0}),
    "pixels+perception-first": ({"perceived_objects": 1}, {"perception_steps": -1}),
    "pixels+replays": ({"perceived_objects": 1}, {"perception_frames": "recorded"}),
    "pixels+perception-first+replays": (
        {"perceived_objects": 1},
        {"perception_steps": -1, "perception_frames": "recorded"},
    ),
    "privileged": ({"object_slots": 1}, {}),
}
"""Each arm's ``VLAConfig`` and ``PretrainConfig`` fields: from pixels alone; from pixels with the object head
(the cube's recorded positions as training labels only), its loss weighted 1 or, ``-x100``, 100 (its error in
cm² rather than (0.1 m)²), or, ``perception-first``, trained alone for ``--perception-steps`` and then frozen
(``PretrainConfig.perception_steps``; -1 here stands for that option); ``+replays``, the head also learns from
``--replays`` replays of the demonstrations on new scenes (``PretrainConfig.perception_frames = "recorded"``),
whose arms say nothing about where the cube is; privileged (the cube's true position from the simulator as an
input). Every arm gets the replays; only the ``+replays`` arms learn from them."""


def scripted_episodes(
    driver: AlohaSimDriver, seeds: range, max_steps: int, sources: list[Episode] | None = None
) -> list[Episode]:
    """Successful scripted demonstrations on ``seeds`` as ``Episode`` objects, with the perceived object poses of
    every step; with ``sources``, replays instead (``lwd_sim.replay``): the i-th seed's scene gets the actions of
    source ``i % len(sources)``, and every replay is kept, as the failed demonstration it almost always is."""
    episodes = []
    for index, seed in enumerate(seeds):
        observation = driver.reset(seed)
        if sources is None:
            operator = ScriptedOperator(seed=seed)
            operator.reset(driver)
            operator.take_over(driver, "demonstration")
            steps = max_steps
        else:
            operator = ReplayOperator(sources[index % len(sources)].actions)
            steps = len(operator.commands)
        images, proprio, poses, actions = [], [], [], []
        for _ in range(steps):
            command = operator.command(driver)
            images.append(observation.images["top"])
            proprio.append(observation.qpos)
            poses.append(observation.object_poses)
            actions.append(command)
            observation = driver.step(command)
            if driver.success:
                break
        if not driver.success and sources is None:
            continue
        episode = Episode(
            key=f"{'replay' if sources else 'demo'}-{seed}",
            episode_id=f"{'replay' if sources else 'demo'}-{seed}",
            robot_id="bench",
            task=TASK,
            instruction=driver.instruction,
            episode_kind="demonstration",
            outcome="success" if driver.success else "failure",
            cameras=("top",),
            stamps=np.arange(len(actions)),
            images={"top": np.stack(images)},
            proprio=np.stack(proprio),
            actions=np.stack(actions),
            intervention=np.zeros(len(actions), dtype=bool),
            policy_version=np.array([""] * len(actions)),
            terminal=driver.success,
            object_poses=np.stack(poses),
        )
        episodes.append(episode)
    return episodes


def evaluate(
    model: PolicyModel,
    normalizer: Normalizer,
    encoder: InstructionEncoder,
    driver: AlohaSimDriver,
    seeds: range,
    noise_scale: float,
    max_steps: int,
) -> tuple[list[int], list[float]]:
    """Best stage reached per evaluation seed, executing each chunk open-loop from ``noise_scale`` × N(0, I);
    with an object head, also its localization error (mm) at every chunk start."""
    config = model.config
    generator = torch.Generator().manual_seed(0)
    stages, errors = [], []
    for seed in seeds:
        observation = driver.reset(seed)
        best = 0
        while driver.steps < max_steps and not driver.success:
            state = policy_state(observation.qpos, observation.object_poses, config.object_slots)
            batch = ObservationBatch(
                images={"top": torch.from_numpy(observation.images["top"]).permute(2, 0, 1)[None].contiguous()},
                instruction_embedding=encoder.embed([driver.instruction]).float(),
                proprio=torch.from_numpy(np.asarray(normalizer.normalize_proprio(state[None]), dtype=np.float32)),
            )
            with torch.inference_mode():
                noise = noise_scale * torch.randn(1, config.horizon, config.action_dim, generator=generator)
                chunk = normalizer.unnormalize_action(model.sample(model.encode(batch), noise=noise))[0].double()
                if getattr(model, "objects", None) is not None:
                    predicted = model.objects(model.vision.keypoints(batch.images))[0, 0].numpy() * POSITION_UNIT_M
                    errors.append(1000 * float(np.linalg.norm(predicted - observation.object_poses[0, :3])))
            for action in chunk.numpy():
                observation = driver.step(action)
                best = max(best, driver.stage_reward)
                if driver.success or driver.steps >= max_steps:
                    break
        stages.append(best)
    return stages, errors


def progress_printer(arm: str, started: float) -> Callable[[int, float], None]:
    """A ``pretrain_bc`` progress callback printing the arm's step, loss and seconds since ``started``."""
    return lambda step, loss: print(f"  {arm}: step {step}, loss {loss:.4f}, {time.monotonic() - started:.0f} s",
                                    flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", type=int, default=60, help="scripted demonstrations")
    parser.add_argument("--steps", type=int, default=3000, help="BC gradient steps per arm")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--episodes", type=int, default=20, help="validation seeds to evaluate on")
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--perception-steps", type=int, default=2000, help="of the perception-first arms")
    parser.add_argument("--perception-lr", type=float, default=3e-4, help="of the perception-first arms")
    parser.add_argument("--replays", type=int, default=0, help="replays on new scenes, for the +replays arms")
    parser.add_argument("--seed", type=int, default=0, help="BC training seed (the demonstrations stay the same)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {','.join(ARMS)}")
    parser.add_argument("--noise-scales", default="0,1", help="comma-separated flow noise scales to evaluate")
    args = parser.parse_args()
    encoder = InstructionEncoder()
    driver = AlohaSimDriver(TASK, ("top",), 96, 128)
    started = time.monotonic()
    demos = scripted_episodes(driver, split_seeds("demonstration", args.demos), args.max_steps)
    print(f"{len(demos)}/{args.demos} demonstrations succeeded ({time.monotonic() - started:.0f} s)", flush=True)
    replay_seeds = split_seeds("demonstration", args.replays, offset=args.demos)
    replays = scripted_episodes(driver, replay_seeds, args.max_steps, sources=demos) if args.replays else []
    print(f"{len(replays)} replays, {sum(e.success for e in replays)} succeeded by chance", flush=True)
    print("| arm | noise scale | validation success (95% CI) | best stage per episode | object head error, median mm |"
          " BC time |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for arm in args.arms.split(","):
        if arm not in ARMS:
            parser.error(f"unknown arm {arm!r}; arms are {', '.join(ARMS)}")
        model_fields, pretrain_fields = ARMS[arm]
        if pretrain_fields.get("perception_steps") == -1:
            pretrain_fields = {
                **pretrain_fields,
                "perception_steps": args.perception_steps,
                "perception_lr": args.perception_lr,
            }
        config = VLAConfig(**model_fields)
        started = time.monotonic()
        settings = PretrainConfig(
            steps=args.steps, batch_size=args.batch_size, seed=args.seed, log_every=500, **pretrain_fields
        )
        model, normalizer = pretrain_bc(
            demos + replays, config, encoder, settings, progress=progress_printer(arm, started)
        )
        trained = time.monotonic() - started
        seeds = split_seeds("validation", args.episodes)
        for noise_scale in (float(value) for value in args.noise_scales.split(",")):
            stages, errors = evaluate(model.eval(), normalizer, encoder, driver, seeds, noise_scale, args.max_steps)
            rate = wilson_rate(sum(stage == driver.max_stage for stage in stages), len(stages))
            error = f"{np.median(errors):.1f}" if errors else "-"
            print(f"| {arm} | {noise_scale:g} | {rate} | {stages} | {error} | {trained:.0f} s |", flush=True)
    driver.close()


if __name__ == "__main__":
    main()

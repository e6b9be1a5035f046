"""What a BC flow step costs after perception-first, with each frame's frozen keypoints computed once (as
``lwd train bc --perception-steps`` does) against running the frozen vision trunk on every step.

Both arms train the same pixel VLA from the same seed on the same demonstrations and differ only in that cache, so
their final weights must agree (printed as the largest difference). Wall times are measured in the same run; the
ratio is the number to compare across machines. The cache pays for itself by how often each frame is drawn
(flow steps × batch / frames, printed): the default demo's BC draws each cloned frame about 4 times
(6,000 × 32 / 45,000), which the defaults here match.

    .venv/bin/python bench/bc_step.py --episodes file:///tmp/runs/demo_px2/fleet --limit 20
"""

from __future__ import annotations

import argparse
import tempfile
import time

from lwd_learner.bc_frames import FrameTable
from lwd_learner.episode_cache import EpisodeCache
from lwd_learner.pretrain import find_episode_folders, load_episodes, pretrain_bc
from lwd_learner.pretrain_config import PretrainConfig
from lwd_policy.config import VLAConfig
from lwd_policy.language import InstructionEncoder


def timed_run(episodes, config: VLAConfig, settings: PretrainConfig, cached: bool) -> tuple[dict, float, float]:
    """Train once; returns the weights, the seconds of the perception steps and of the flow steps (cache included)."""
    marks: dict[int, float] = {}
    original = FrameTable.perceive
    if not cached:
        FrameTable.perceive = lambda *args: None
    try:
        start = time.perf_counter()
        model, _ = pretrain_bc(
            episodes,
            config,
            InstructionEncoder(),
            settings,
            progress=lambda step, _: marks.setdefault(step, time.perf_counter()),
        )
        end = time.perf_counter()
    finally:
        FrameTable.perceive = original
    perception_end = marks[settings.perception_steps]
    return model.state_dict(), perception_end - start, end - perception_end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", required=True, help="store URL or folder of demonstration bags")
    parser.add_argument("--limit", type=int, default=20, help="use the first N episodes")
    parser.add_argument("--perception-steps", type=int, default=50)
    parser.add_argument("--steps", type=int, default=400, help="flow steps after perception-first")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    config = VLAConfig(perceived_objects=2)
    with tempfile.TemporaryDirectory() as cache_dir:
        folders = find_episode_folders(args.episodes)[: args.limit]
        episodes = load_episodes(folders, EpisodeCache(cache_dir), config.cameras, config)
    frames = sum(episode.steps for episode in episodes)
    settings = PretrainConfig(
        steps=args.steps, perception_steps=args.perception_steps, batch_size=args.batch_size, log_every=1
    )
    draws = args.steps * args.batch_size / frames
    print(f"{len(episodes)} episodes, {frames} frames; {args.perception_steps} perception + {args.steps} flow steps")
    print(f"each frame is drawn {draws:.1f} times by the flow steps")
    results = {
        name: timed_run(episodes, config, settings, cached)
        for name, cached in (("recomputed", False), ("cached", True))
    }
    print("| trunk after perception-first | perception steps/s | flow steps/s (cache included) |")
    print("|---|---|---|")
    for name, (_, perception_s, flow_s) in results.items():
        print(f"| {name} | {args.perception_steps / perception_s:.2f} | {args.steps / flow_s:.2f} |")
    ratio = results["recomputed"][2] / results["cached"][2]
    difference = max(
        float((results["cached"][0][name] - weight).abs().max()) for name, weight in results["recomputed"][0].items()
    )
    print(f"flow phase: cached is {ratio:.2f}x faster; largest weight difference between the arms {difference:.2e}")


if __name__ == "__main__":
    main()

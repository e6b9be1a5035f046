"""Benchmark of the learner's data and service path: bag decode, episode cache, frozen-encoder features,
replay sampling + batch assembly, the replay buffer's own work per update at a demo's size, and service updates/s
against the bare agent update (interleaved, medians).

    .venv/bin/python bench/learner_service.py [--steps 200] [--updates 30] [--held-episodes 1224]

Prints a table; the default VLA (96x128 top camera, feature 256) and default AgentConfig are used.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "test" / "learner"))

from conftest import commit_episode  # noqa: E402  (the test suite's LWD bag writer)
from lwd_fleet.publisher import PolicyPublisher  # noqa: E402
from lwd_fleet.store import FleetStore  # noqa: E402
from lwd_learner.dataset import ChunkTransitions, build_transitions  # noqa: E402
from lwd_learner.episode_cache import EpisodeCache  # noqa: E402
from lwd_learner.replay_buffer import ReplayBuffer  # noqa: E402
from lwd_learner.trainer import TrainerConfig, TrainerService  # noqa: E402
from lwd_policy.checkpoint import save_checkpoint  # noqa: E402
from lwd_policy.config import VLAConfig  # noqa: E402
from lwd_policy.language import InstructionEncoder  # noqa: E402
from lwd_policy.model import FlowMatchingVLA  # noqa: E402
from lwd_policy.normalization import Normalizer  # noqa: E402


def timed(function, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - start) / repeat


def held_buffer_update(episodes: int, transitions: ChunkTransitions) -> Callable[[], None]:
    """The replay buffer's work in one trainer update, with ``episodes`` copies of ``transitions`` held: the batch,
    the clone batch and the composition the telemetry records."""
    buffer = ReplayBuffer(10**9, {"demo": 0.25, "autonomous": 0.5, "intervention": 0.25}, max_oversample=4)
    for index in range(episodes):
        buffer.add(f"episode-{index}", transitions, demonstration=index % 2 == 0)

    def update() -> None:
        buffer.sample(64)
        buffer.sample(64, {"demo": 0.5, "intervention": 0.5})
        buffer.composition()

    return update


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200, help="control steps per episode")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument(
        "--held-episodes", type=int, default=1224, help="episodes in the buffer row (the suite's first round: 1,224)"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    vla = VLAConfig()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = root / "store"
        kinds = ["demonstration", "deployment", "deployment"]
        for index in range(args.episodes):
            commit_episode(
                store,
                f"ep{index}",
                steps=args.steps,
                kind=kinds[index % 3],
                intervention_steps=tuple(range(40, 80)) if index % 3 == 1 else (),
                image_shape=(vla.image_height, vla.image_width),
            )
        folder = next(store.glob("episodes/*/*/ep0"))
        key = "0" * 64
        cache = EpisodeCache(root / "episode-cache")
        decode_s = timed(lambda: cache.load(folder, key))
        hit_s = timed(lambda: EpisodeCache(root / "episode-cache").load(folder, key), repeat=3)
        episode = cache.load(folder, key)
        rows.append(("bag decode (cold)", f"{args.steps / decode_s:,.0f} steps/s", f"{decode_s * 1e3:.0f} ms/episode"))
        rows.append(("episode cache hit", f"{args.steps / hit_s:,.0f} steps/s", f"{hit_s * 1e3:.1f} ms/episode"))
        transitions_s = timed(lambda: build_transitions(episode, vla.horizon, 0.99, 1, 1), repeat=5)
        rows.append(("chunk transitions (stride 1)", f"{args.steps / transitions_s:,.0f} steps/s", ""))
        buffer_s = timed(
            held_buffer_update(args.held_episodes, build_transitions(episode, vla.horizon, 0.99, 1, 20)), 20
        )
        rows.append(
            ("buffer per update", f"{buffer_s * 1e3:.2f} ms/update", f"{args.held_episodes} episodes held, B=64 twice")
        )

        model = FlowMatchingVLA(vla)
        normalizer = Normalizer.identity(vla.proprio_dim, vla.action_dim)
        save_checkpoint(model, normalizer, root / "pretrained", "v000000-bench")
        PolicyPublisher(FleetStore(f"file://{store}")).publish(root / "pretrained", "v000000-bench", "stable")
        encoder = InstructionEncoder()
        encoder.embed([episode.instruction])
        config = TrainerConfig(store_url=f"file://{store}", work_dir=root / "work", publish_every=10**9)
        service = TrainerService(config, lambda checkpoint: encoder)
        start = time.perf_counter()
        service.ingest_new()
        ingest_s = time.perf_counter() - start
        frames = service.features.frames_encoded
        rows.append(("ingest: verify+decode+encode", f"{frames / ingest_s:,.1f} frames/s", f"{frames} frames"))
        batch_s = timed(service.sample_batch, repeat=20)
        rows.append(("sample + batch (B=64)", f"{64 / batch_s:,.0f} samples/s", f"{batch_s * 1e3:.2f} ms/batch"))
        service.train_step()
        batch = service.sample_batch()
        service_times, agent_times = [], []
        for _ in range(args.updates):
            service_times.append(timed(service.train_step))
            agent_times.append(timed(lambda: service.agent.update(batch)))
        service_s, agent_s = statistics.median(service_times), statistics.median(agent_times)
        rows.append(("service update (B=64)", f"{1 / service_s:,.2f} updates/s", f"{service_s * 1e3:.0f} ms/update"))
        rows.append(("bare agent.update (B=64)", f"{1 / agent_s:,.2f} updates/s", f"{agent_s * 1e3:.0f} ms/update"))
        rows.append(("service overhead", f"{(service_s / agent_s - 1) * 100:+.1f} %", "sampling, batch, telemetry"))
        publish_s = timed(service.publish)
        rows.append(("publish (save + upload + channel)", f"{publish_s * 1e3:.0f} ms", ""))
        service.close()
    width = max(len(name) for name, _, _ in rows)
    print(f"{'measure':<{width}} | {'rate':>22} | note")
    print(f"{'-' * width}-|-{'-' * 22}-|-----")
    for name, rate, note in rows:
        print(f"{name:<{width}} | {rate:>22} | {note}")


if __name__ == "__main__":
    main()

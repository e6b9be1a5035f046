"""Learner update cost: BC vs the full LWD update (DIVL value + critic + QAM actor + BC base) at the default model.

    .venv/bin/python bench/learner.py                       # batch 256, median of 7 interleaved rounds
    .venv/bin/python bench/learner.py --batch 64 --updates 10 --device cuda

The action expert is lwd_policy's default `ActionExpert` (VLAConfig(): F=256, width 512, 3 blocks, H=20, D=14),
K = 10 flow steps. Cases, all with Adam steps and grad clipping as in training:
- BC, cached features: flow matching on the action expert only (HG-DAgger / actor="bc" agent update).
- BC, full VLA: encoder (CNN on one 96x128 camera + language + proprio) and expert, as `lwd train bc` pretrains.
- LWD full, cached features: `LWDAgent.update` (value + τ/y + critic + EMA + QAM + BC), the online update.
- LWD full + frozen encoder: the same with features computed by the frozen encoder for s and s' every update
  (what the update would cost without the feature cache).
- LWD full, expectile value: the IQL-expectile ablation.
Prints a markdown table: median ms/update, updates/s, samples/s and the ratio to both BC cases (same run).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from lwd_learner.agent import AgentConfig, LWDAgent, TransitionBatch
from lwd_policy.config import VLAConfig
from lwd_policy.contract import ObservationBatch
from lwd_policy.flow import flow_matching_loss
from lwd_policy.model import FlowMatchingVLA


def observations(config: VLAConfig, batch: int, device: torch.device) -> ObservationBatch:
    images = {
        camera: torch.randint(0, 256, (batch, 3, config.image_height, config.image_width), dtype=torch.uint8)
        for camera in config.cameras
    }
    return ObservationBatch(
        images=images,
        instruction_embedding=torch.randn(batch, config.language_dim),
        proprio=torch.randn(batch, config.proprio_dim),
    ).to(device)


def transitions(config: VLAConfig, batch: int, device: torch.device) -> TransitionBatch:
    done = torch.rand(batch) < 0.05
    is_intervention, is_demo = torch.rand(batch) < 0.2, torch.rand(batch) < 0.3
    return TransitionBatch(
        features=torch.randn(batch, config.feature_dim),
        actions=torch.randn(batch, config.horizon, config.action_dim).clamp(-3, 3),
        action_mask=torch.ones(batch, config.horizon, dtype=torch.bool),
        operator_mask=(is_intervention | is_demo).unsqueeze(1).expand(batch, config.horizon).clone(),
        reward=done.float(),
        next_features=torch.randn(batch, config.feature_dim),
        done=done,
        discount=torch.where(done, 0.0, 0.99**config.horizon),
        is_intervention=is_intervention,
        is_demo=is_demo,
    ).to(device)


def timed_rounds(cases: list[tuple[str, Callable[[], None]]], rounds: int, device: torch.device) -> dict[str, float]:
    """Median seconds per update of every case; cases are interleaved round by round, after one warm-up each.

    Interleaving exposes every case to the same background load, so the ratios stay meaningful on a shared VM.
    """
    samples: dict[str, list[float]] = {name: [] for name, _ in cases}
    for round_index in range(rounds + 1):
        for name, step in cases:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if round_index > 0:
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--updates", type=int, default=7, help="timed rounds per case (median reported)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    vla_config = VLAConfig()
    model = FlowMatchingVLA(vla_config).to(device)
    agent_config = AgentConfig(
        feature_dim=vla_config.feature_dim,
        horizon=vla_config.horizon,
        action_dim=vla_config.action_dim,
        flow_steps=vla_config.flow_steps,
    )
    data = transitions(vla_config, args.batch, device)
    obs = observations(vla_config, args.batch, device)
    next_obs = observations(vla_config, args.batch, device)

    bc_agent = LWDAgent(AgentConfig(**{**agent_config.to_dict(), "actor": "bc"}), model.action_expert, device)
    lwd_agent = LWDAgent(agent_config, model.action_expert, device)
    iql_agent = LWDAgent(AgentConfig(**{**agent_config.to_dict(), "value": "expectile"}), model.action_expert, device)
    vla_optimizer = torch.optim.Adam(model.parameters(), lr=agent_config.lr)

    def bc_full_vla() -> None:
        vla_optimizer.zero_grad(set_to_none=True)
        flow_matching_loss(model, data.actions, model.encode(obs)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), agent_config.grad_clip)
        vla_optimizer.step()

    def lwd_with_encoder() -> None:
        with torch.no_grad():
            data.features = model.encode(obs)
            data.next_features = model.encode(next_obs)
        lwd_agent.update(data)

    cases: list[tuple[str, Callable[[], None]]] = [
        ("BC, cached features", lambda: bc_agent.update(data)),
        ("BC, full VLA (encoder + expert)", bc_full_vla),
        ("LWD full, cached features", lambda: lwd_agent.update(data)),
        ("LWD full + frozen encoder (s, s')", lwd_with_encoder),
        ("LWD full, expectile value", lambda: iql_agent.update(data)),
    ]
    seconds = timed_rounds(cases, args.updates, device)
    bc_features = seconds["BC, cached features"]
    bc_vla = seconds["BC, full VLA (encoder + expert)"]
    print(
        f"device={device} threads={torch.get_num_threads()} batch={args.batch} K={agent_config.flow_steps} "
        f"H={vla_config.horizon} D={vla_config.action_dim} F={vla_config.feature_dim} updates={args.updates}"
    )
    print()
    print("| case | ms/update | updates/s | samples/s | × BC (features) | × BC (full VLA) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, _ in cases:
        value = seconds[name]
        print(
            f"| {name} | {value * 1e3:.1f} | {1 / value:.2f} | {args.batch / value:.0f} "
            f"| {value / bc_features:.2f} | {value / bc_vla:.2f} |"
        )


if __name__ == "__main__":
    main()

"""Adam's kernels on CPU on this project's parameter sets: the per-tensor loop, ``foreach`` and ``fused``.

torch picks a multi-tensor kernel by default only on accelerators; on CPU an Adam step loops over the tensors,
one elementwise operation after another, unless ``fused=True`` asks for the single fused kernel. Each case steps
Adam over random gradients of one parameter set: the default VLA (every weight, as when BC trains the whole
model), its action expert (BC flow steps once perception is frozen), and the LWD agent's four optimizers (one
trainer update). The kernels take turns round by round, so their ratios hold on a shared VM; the largest weight
difference of each kernel from the loop after the timed steps is printed too.

    .venv/bin/python bench/optimizer.py --rounds 30
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from lwd_learner.agent import AgentConfig, LWDAgent
from lwd_policy.config import VLAConfig
from lwd_policy.model import FlowMatchingVLA
from torch import nn


def parameter_sets() -> dict[str, list[list[nn.Parameter]]]:
    """Each case's parameter groups, one Adam per group."""
    torch.manual_seed(0)
    config = VLAConfig()
    model = FlowMatchingVLA(config)
    agent = LWDAgent(
        AgentConfig(
            feature_dim=config.feature_dim,
            horizon=config.horizon,
            action_dim=config.action_dim,
            flow_steps=config.flow_steps,
        ),
        model.action_expert,
        torch.device("cpu"),
    )
    return {
        "BC, whole VLA": [list(model.parameters())],
        "BC flow step, action expert": [list(model.action_expert.parameters())],
        "LWD trainer update, 4 optimizers": [list(module.parameters()) for module in agent.modules.values()],
    }


KERNELS = {"per-tensor loop": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed steps per case and kernel (median reported)")
    args = parser.parse_args()
    print(f"threads={torch.get_num_threads()} rounds={args.rounds}")
    print()
    print(
        "| parameter set | tensors | parameters | "
        + " | ".join(f"{kernel} ms/step" for kernel in KERNELS)
        + " | fused speed-up | max weight difference from the loop |"
    )
    print("|---|---:|---:|" + "---:|" * (len(KERNELS) + 2))
    for name, groups in parameter_sets().items():
        copies = {kernel: [[p.detach().clone() for p in group] for group in groups] for kernel in KERNELS}
        optimizers = {
            kernel: [torch.optim.Adam(group, lr=1e-4, **options) for group in copies[kernel]]
            for kernel, options in KERNELS.items()
        }
        samples: dict[str, list[float]] = {kernel: [] for kernel in KERNELS}
        generator = torch.Generator().manual_seed(1)
        for round_index in range(args.rounds + 1):
            gradients = [[torch.randn(p.shape, generator=generator) for p in group] for group in groups]
            for kernel in KERNELS:
                for group, grads in zip(copies[kernel], gradients, strict=True):
                    for parameter, grad in zip(group, grads, strict=True):
                        parameter.grad = grad.clone()
                start = time.perf_counter()
                for optimizer in optimizers[kernel]:
                    optimizer.step()
                if round_index:
                    samples[kernel].append(time.perf_counter() - start)
        medians = {kernel: statistics.median(values) for kernel, values in samples.items()}
        loop = copies["per-tensor loop"]
        difference = max(
            float((a - b).abs().max())
            for kernel in KERNELS
            for group_a, group_b in zip(loop, copies[kernel], strict=True)
            for a, b in zip(group_a, group_b, strict=True)
        )
        tensors = sum(len(group) for group in groups)
        count = sum(p.numel() for group in groups for p in group)
        times = " | ".join(f"{medians[kernel] * 1e3:.1f}" for kernel in KERNELS)
        speed_up = medians["per-tensor loop"] / medians["fused"]
        print(f"| {name} | {tensors} | {count:,} | {times} | {speed_up:.2f}x | {difference:.1e} |")


if __name__ == "__main__":
    main()

"""One data-parallel replica for test_ddp.py, launched by ``torch.distributed.run`` (torchrun) on CPU/gloo.

Each rank seeds its own initial weights and data, joins the group through ``DistributedContext``, takes rank
0's state, runs a few LWD updates with gradient averaging, and saves its modules to ``<out>/rank<R>.safetensors``.
With a second argument R, rank R's critic loss of update ``NAN_UPDATE`` turns NaN (one rank's numerics diverge):
every rank records the ``TrainingDivergedError`` it got in ``<out>/rank<R>.json`` and stops training there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from lwd_learner.agent import LWDAgent, TrainingDivergedError
from lwd_learner.agent_config import AgentConfig
from lwd_learner.distributed import DistributedContext
from lwd_learner.transition import TransitionBatch
from safetensors.torch import save_file
from torch import nn

FEATURES, HORIZON, ACTIONS, UPDATES = 8, 2, 3, 3
NAN_UPDATE = 1


class TinyExpert(nn.Module):
    """A small velocity field v(x, t, features) with the ActionExpert signature."""

    def __init__(self) -> None:
        super().__init__()
        width = HORIZON * ACTIONS
        self.net = nn.Sequential(nn.Linear(width + 1 + FEATURES, 32), nn.SiLU(), nn.Linear(32, width))

    def forward(self, x: torch.Tensor, t: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x.flatten(1), t[:, None], features], dim=1)).view_as(x)


def batch_for(rank: int, step: int) -> TransitionBatch:
    """A different random batch per rank and step."""
    generator = torch.Generator().manual_seed(1000 * rank + step)
    size = 16
    done = torch.rand(size, generator=generator) < 0.2
    return TransitionBatch(
        features=torch.randn(size, FEATURES, generator=generator),
        actions=torch.randn(size, HORIZON, ACTIONS, generator=generator).clamp(-1, 1),
        action_mask=torch.ones(size, HORIZON, dtype=torch.bool),
        operator_mask=torch.zeros(size, HORIZON, dtype=torch.bool),
        reward=done.float(),
        next_features=torch.randn(size, FEATURES, generator=generator),
        done=done,
        discount=torch.where(done, 0.0, 0.98),
        is_intervention=torch.zeros(size, dtype=torch.bool),
        is_demo=torch.zeros(size, dtype=torch.bool),
    )


def poison_critic_loss(agent: LWDAgent) -> None:
    """Make this agent's next critic loss NaN, as diverged numerics on this replica alone would."""
    losses_of = agent._lwd_losses

    def poisoned(
        batch: TransitionBatch, clone: TransitionBatch
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        losses, logs = losses_of(batch, clone)
        losses["critic_loss"] = losses["critic_loss"] * float("nan")
        return losses, logs

    agent._lwd_losses = poisoned


def main(out: Path, nan_rank: int | None) -> None:
    context = DistributedContext.from_environment()
    torch.manual_seed(context.rank)
    config = AgentConfig(feature_dim=FEATURES, horizon=HORIZON, action_dim=ACTIONS, hidden_dim=16, flow_steps=3)
    agent = LWDAgent(
        config,
        TinyExpert(),
        device=context.device,
        grad_sync=context.average_gradients,
        finite_sync=context.diverged_ranks,
    )
    initial = agent.state_dict()["module.actor.net.0.weight"].clone()
    agent.load_state_dict(context.broadcast_state(agent.state_dict()))
    losses, diverged = [], ""
    for step in range(UPDATES):
        if context.rank == nan_rank and step == NAN_UPDATE:
            poison_critic_loss(agent)
        try:
            losses.append(agent.update(batch_for(context.rank, step))["critic_loss"])
        except TrainingDivergedError as error:
            diverged = str(error)
            break
    tensors = {key: value for key, value in agent.state_dict().items() if key.startswith("module.")}
    tensors["initial"] = initial
    save_file(tensors, str(out / f"rank{context.rank}.safetensors"))
    log = {"losses": losses, "world": context.world_size, "diverged": diverged}
    (out / f"rank{context.rank}.json").write_text(json.dumps(log))
    context.barrier()
    context.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None)

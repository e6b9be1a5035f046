"""`LWDAgent`: DIVL value learning + QAM actor fine-tuning on cached encoder features (docs/method.md).

One `update(batch)` computes, in this order (each loss reads next to its formula):

1. Value distribution:  L_V = CE(two_hot(Q̄(s, a)), V_ψ(·|s)),  Q̄ = min_j Q_φ̄_j (EMA target), a from the data.
   (expectile ablation: L_V = E[|e − 1(u<0)|·u²], u = Q̄(s, a) − V(s))
2. τ and y:  τ(s') = clip(τ_base − α·H(V_ψ(·|s'))/log B, τ_min, τ_max),  y = r + discount·Quantile_τ(s')(V_ψ(·|s')).
   (expectile ablation: y = r + discount·V(s'))
3. Critic:  L_Q = Σ_j E[(Q_φ_j(s, a) − y)²].
4. EMA:  φ̄ ← φ̄ + τ_ema·(φ − φ̄)   (after the optimizer steps, see below).
5. QAM actor:  memoryless SDE rollout of f_θ, lean adjoint through the base reference f_β̄ from
   ã_K = −(1/λ)∇_a Q̄(s, clip(x_K)) with Q̄ the mean of the online heads (as the official QAM code),
   L_QAM = Σ_i ‖2(f_θ − f_β̄)/σ_i + σ_i ã_i‖²  (see `lwd_learner.qam`).
6. BC on the base flow:  L_BC = E‖f_β(x_t, t, s) − (a − ε)‖²  over the operator's steps (``operator_mask``:
   demonstrations, and intervention chunks from the takeover to the hand-back; every executed step with
   base_data="all"; padding past an episode's end never) of the clone batch, which is the update's batch unless
   the trainer draws one by its ``clone_mix``,  then f_β̄ ← EMA of f_β.

Targets (Q̄ for the value head, y for the critic, the adjoints for QAM) are computed from this update's
parameters before any of them moves, every loss is checked, and only then do all optimizers step — so a
NaN/inf loss or gradient raises `TrainingDivergedError` with no parameter, optimizer or EMA state touched.
The four parameter sets are disjoint, so this is the same as stepping them one after another with
targets taken at the start of the update (as the official JAX agents do).

Baselines in the same code path: actor="bc" trains only f_θ by flow matching on the same steps the base flow
clones (HG-DAgger with base_data="operator": demonstrations and intervention segments); value="expectile" swaps
DIVL for a scalar IQL-expectile value.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from lwd_policy.flow import euler_sample, flow_matching_loss
from torch import Tensor, nn

from lwd_learner.agent_config import AgentConfig
from lwd_learner.critic import DoubleQHead, ExpectileValueHead, ValueDistributionHead, ema_update, expectile_loss
from lwd_learner.distributional import CategoricalSupport, adaptive_tau
from lwd_learner.qam import adjoint_matching_loss, lean_adjoint, memoryless_rollout, terminal_adjoint
from lwd_learner.transition import TransitionBatch

__all__ = ["AgentConfig", "AgentStateError", "LWDAgent", "TrainingDivergedError", "TransitionBatch"]

GradSync = Callable[[list[nn.Parameter]], None]
FiniteSync = Callable[[bool], list[int]]


class TrainingDivergedError(RuntimeError):
    """A loss or gradient became NaN/inf; the update was not applied."""


class AgentStateError(ValueError):
    """A state dict given to `LWDAgent.load_state_dict` does not match this agent's modules or optimizers."""


class LWDAgent:
    """DIVL + QAM learner over a policy's action expert `forward(x [B,H,D], t [B], features [B,F]) -> v [B,H,D]`.

    Any velocity field with that signature works; the trainer passes the pretrained policy's
    `PolicyModel.action_expert` (`lwd_policy.contract`), and publishes f_θ back into it.

    The initial action expert is deep-copied into the fine-tuned flow f_θ (published), the base flow f_β
    (BC) and its EMA reference f_β̄. `grad_sync`, when given, is called with every trainable parameter after
    the gradients exist and before they are checked, clipped and applied (e.g. a DDP all-reduce).
    `finite_sync`, when given, is called every update with whether this replica's losses are finite and
    returns the ranks whose are not, agreed by all replicas; any → every replica stops that update together.
    """

    def __init__(
        self,
        config: AgentConfig,
        action_expert: nn.Module,
        device: torch.device | str = "cpu",
        grad_sync: GradSync | None = None,
        finite_sync: FiniteSync | None = None,
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.dtype = next(action_expert.parameters()).dtype
        self.grad_sync = grad_sync
        self.finite_sync = finite_sync
        self.updates = 0
        self.support = CategoricalSupport(config.num_atoms, config.v_min, config.v_max)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        # Trainable copies even when the caller's expert is frozen (the trainer freezes the pretrained policy).
        self.fine_flow = copy.deepcopy(action_expert).to(self.device).requires_grad_(True)
        self.modules: dict[str, nn.Module] = {"actor": self.fine_flow}
        if config.actor == "qam":
            # The heads start from the config's seed (the caller's global RNG is left as it was), so a trainer
            # run is reproducible from its settings.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed)
                self._add_value_learning(action_expert)
        # fused: one kernel per step, 3-4x faster on CPU than torch's default per-tensor loop (bench/optimizer.py).
        self.optimizers = {
            name: torch.optim.Adam(
                self.modules[name].parameters(),
                lr=config.actor_lr if name == "actor" and config.actor_lr else config.lr,
                fused=True,
            )
            for name in ("actor", "base", "value", "critic")
            if name in self.modules
        }

    def _add_value_learning(self, action_expert: nn.Module) -> None:
        """QAM's modules: the base flow f_β with its EMA reference, the value head (DIVL or expectile), the critic."""
        config = self.config
        self.base_flow = copy.deepcopy(action_expert).to(self.device).requires_grad_(True)
        self.base_reference = self._frozen_copy(self.base_flow)
        if config.value == "divl":
            value_head: nn.Module = ValueDistributionHead(
                config.feature_dim, config.num_atoms, config.hidden_dim, config.num_layers
            )
        else:
            value_head = ExpectileValueHead(config.feature_dim, config.hidden_dim, config.num_layers)
        self.value_head = value_head.to(device=self.device, dtype=self.dtype)
        action_numel = config.horizon * config.action_dim
        self.critic = DoubleQHead(config.feature_dim, action_numel, config.hidden_dim, config.num_layers).to(
            device=self.device, dtype=self.dtype
        )
        self.target_critic = self._frozen_copy(self.critic)
        self.modules.update(
            base=self.base_flow,
            base_reference=self.base_reference,
            value=self.value_head,
            critic=self.critic,
            target_critic=self.target_critic,
        )

    @staticmethod
    def _frozen_copy(module: nn.Module) -> nn.Module:
        frozen = copy.deepcopy(module)
        frozen.requires_grad_(False)
        return frozen

    def policy_action_expert(self) -> nn.Module:
        """The fine-tuned flow f_θ to publish (the live module: copy it before changing it)."""
        return self.fine_flow

    @torch.no_grad()
    def sample_actions(self, features: Tensor, noise: Tensor | None = None) -> Tensor:
        """Actions [B, H, D] from f_θ by K Euler steps of the flow ODE, as the policy samples them."""
        features = features.to(self.device, self.dtype)
        if noise is None:
            noise = self._randn((features.shape[0], self.config.horizon, self.config.action_dim))
        return euler_sample(self.fine_flow, features, noise.to(self.device, self.dtype), self.config.flow_steps)

    def _randn(self, shape: tuple[int, ...]) -> Tensor:
        return torch.randn(shape, generator=self.generator, device=self.device, dtype=self.dtype)

    def update(self, batch: TransitionBatch, clone_batch: TransitionBatch | None = None) -> dict[str, float]:
        """One training step on `batch`; returns the logged figures (losses, τ stats, entropy, ‖∇Q‖, divergence).

        `clone_batch`, when given, is what the cloning loss (the base flow's; the BC actor's) learns from instead of
        `batch`: a batch drawn for cloning (the trainer's ``clone_mix``), while the critic, value and QAM actor learn
        from `batch`.
        """
        cfg = self.config
        batch = batch.to(self.device, self.dtype)
        batch.validate(cfg.feature_dim, cfg.horizon, cfg.action_dim)
        clone = batch
        if clone_batch is not None:
            clone = clone_batch.to(self.device, self.dtype)
            clone.validate(cfg.feature_dim, cfg.horizon, cfg.action_dim)
        for module in self.modules.values():
            module.train()
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)

        if cfg.actor == "bc":
            losses = {
                "bc_loss": flow_matching_loss(
                    self.fine_flow, clone.actions, clone.features, generator=self.generator, mask=self._cloned(clone)
                )
            }
            logs: dict[str, Tensor] = {}
        else:
            losses, logs = self._lwd_losses(batch, clone)

        self._apply(losses)
        self.updates += 1
        figures = {name: float(value.detach()) for name, value in {**losses, **logs}.items()}
        figures["intervention_fraction"] = float(batch.is_intervention.float().mean())
        figures["demo_fraction"] = float(batch.is_demo.float().mean())
        return figures

    def _lwd_losses(
        self, batch: TransitionBatch, clone_batch: TransitionBatch
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        cfg = self.config
        logs: dict[str, Tensor] = {}
        s, a, s_next = batch.features, batch.actions, batch.next_features

        # 1. Value: fit the value of the data's actions, Q̄(s, a) = min_j target Q_j(s, a).
        with torch.no_grad():
            q_data = self.target_critic(s, a).min(dim=0).values
        if cfg.value == "divl":
            logits = self.value_head(s)
            value_loss = -(self.support.two_hot(q_data) * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
            # 2. τ(s') from the normalized entropy, bootstrap at the τ(s')-quantile of V_ψ(·|s').
            with torch.no_grad():
                next_logits = self.value_head(s_next)
                tau = adaptive_tau(
                    self.support.normalized_entropy(next_logits), cfg.tau_base, cfg.tau_alpha, cfg.tau_min, cfg.tau_max
                )
                bootstrap = self.support.quantile(torch.softmax(next_logits, dim=-1), tau)
                logs.update(
                    tau_mean=tau.mean(),
                    tau_min=tau.min(),
                    tau_max=tau.max(),
                    value_entropy=self.support.normalized_entropy(logits).mean(),
                    value_mean=self.support.mean(torch.softmax(logits, dim=-1)).mean(),
                )
        else:
            value = self.value_head(s)
            value_loss = expectile_loss(q_data - value, cfg.expectile)
            with torch.no_grad():
                bootstrap = self.value_head(s_next)
                logs["value_mean"] = value.detach().mean()
        y = batch.reward + batch.discount * bootstrap

        # 3. Critic: both heads regress y.
        q = self.critic(s, a)
        critic_loss = (q - y.unsqueeze(0)).square().mean(dim=1).sum()
        logs.update(q_mean=q.detach().mean(), target_mean=y.mean(), q_data_mean=q_data.mean())

        # 5. QAM: rollout f_θ, lean adjoint through the base reference, adjoint matching.
        x0 = self._randn(a.shape)
        noises = self._randn((cfg.flow_steps - 1, *a.shape))
        trajectory = memoryless_rollout(self.fine_flow, s, x0, noises)
        adjoint_final, grad_q_norm = terminal_adjoint(
            lambda actions: self.critic(s, actions).mean(dim=0), trajectory.xs[-1], cfg.lam, cfg.action_clip
        )
        adjoints, base_velocities = lean_adjoint(self.base_reference, s, trajectory, adjoint_final)
        actor_loss, divergence = adjoint_matching_loss(self.fine_flow, s, trajectory, adjoints, base_velocities)
        logs.update(grad_q_norm=grad_q_norm.mean(), actor_base_divergence=divergence)

        # 6. BC flow matching on the base flow, over the steps `_cloned` picks from the clone batch. A batch with
        # nothing to clone gives a zero loss with zero gradients.
        bc_loss = flow_matching_loss(
            self.base_flow,
            clone_batch.actions,
            clone_batch.features,
            generator=self.generator,
            mask=self._cloned(clone_batch),
        )

        losses = {"value_loss": value_loss, "critic_loss": critic_loss, "actor_loss": actor_loss, "bc_loss": bc_loss}
        return losses, logs

    def _cloned(self, batch: TransitionBatch) -> Tensor:
        """The chunk steps [B, H] the cloning losses (base flow, BC actor) learn from, by `AgentConfig.base_data`:
        the operator's steps (demonstrations, interventions from the takeover to the hand-back) or every executed
        step. Padding past an episode's end is in neither."""
        return batch.operator_mask if self.config.base_data == "operator" else batch.action_mask

    def _apply(self, losses: dict[str, Tensor]) -> None:
        """Check, backpropagate, check gradients, clip, step every optimizer, then update the EMA copies."""
        bad = [name for name, value in losses.items() if not bool(torch.isfinite(value.detach()))]
        ranks = self.finite_sync(not bad) if self.finite_sync is not None else []
        if bad or ranks:
            where = f" on rank(s) {ranks}" if ranks else ""
            detail = ", ".join(f"{name}={float(losses[name].detach())}" for name in bad) or "finite on this rank"
            raise TrainingDivergedError(
                f"non-finite loss at update {self.updates}{where}: {detail}; no parameters were changed"
            )
        torch.stack(list(losses.values())).sum().backward()
        if self.grad_sync is not None:
            self.grad_sync([p for opt in self.optimizers.values() for g in opt.param_groups for p in g["params"]])
        norms = {}
        for name, optimizer in self.optimizers.items():
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            norms[name] = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        bad = [name for name, norm in norms.items() if not bool(torch.isfinite(norm))]
        if bad:
            for optimizer in self.optimizers.values():
                optimizer.zero_grad(set_to_none=True)
            raise TrainingDivergedError(
                f"non-finite gradient at update {self.updates} in {', '.join(bad)}; no parameters were changed"
            )
        for optimizer in self.optimizers.values():
            optimizer.step()
        if self.config.actor == "qam":
            ema_update(self.target_critic, self.critic, self.config.ema)
            ema_update(self.base_reference, self.base_flow, self.config.base_ema)

    def state_dict(self) -> dict[str, Tensor]:
        """Everything needed to resume, as a flat dict of distinct contiguous tensors (safetensors-ready).

        Keys: `module.<name>.<param>` (actor, base, base_reference, value, critic, target_critic),
        `optim.<name>.<param index>.<state key>` (Adam moments and step counts), `agent.updates`, `agent.rng`.
        """
        state: dict[str, Tensor] = {}
        for name, module in self.modules.items():
            for key, value in module.state_dict().items():
                state[f"module.{name}.{key}"] = value.detach().clone().contiguous()
        for name, optimizer in self.optimizers.items():
            for index, entries in optimizer.state_dict()["state"].items():
                for key, value in entries.items():
                    tensor = value if isinstance(value, Tensor) else torch.tensor(value)
                    state[f"optim.{name}.{index}.{key}"] = tensor.detach().clone().contiguous()
        state["agent.updates"] = torch.tensor(self.updates, dtype=torch.int64)
        state["agent.rng"] = self.generator.get_state().clone()
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore modules, optimizers, update count and RNG from `state_dict()` output.

        Raises AgentStateError naming the missing or unexpected keys (or mismatched shapes) before changing anything.
        """
        module_states: dict[str, dict[str, Tensor]] = {name: {} for name in self.modules}
        optim_states: dict[str, dict[int, dict[str, Tensor]]] = {name: {} for name in self.optimizers}
        unexpected = []
        for key, value in state.items():
            parts = key.split(".", 2)
            if parts[0] == "module" and len(parts) == 3 and parts[1] in module_states:
                module_states[parts[1]][parts[2]] = value
            elif parts[0] == "optim" and len(parts) == 3 and parts[1] in optim_states:
                index, _, entry = parts[2].partition(".")
                if not index.isdigit() or not entry:
                    unexpected.append(key)
                    continue
                optim_states[parts[1]].setdefault(int(index), {})[entry] = value
            elif key not in ("agent.updates", "agent.rng"):
                unexpected.append(key)
        missing = [k for k in ("agent.updates", "agent.rng") if k not in state]
        for name, module in self.modules.items():
            own = module.state_dict()
            missing += [f"module.{name}.{k}" for k in own if k not in module_states[name]]
            unexpected += [f"module.{name}.{k}" for k in module_states[name] if k not in own]
            missing += [
                f"module.{name}.{k} (shape {tuple(v.shape)} expected, got {tuple(module_states[name][k].shape)})"
                for k, v in own.items()
                if k in module_states[name] and module_states[name][k].shape != v.shape
            ]
        for name, optimizer in self.optimizers.items():
            count = sum(len(group["params"]) for group in optimizer.param_groups)
            unexpected += [f"optim.{name}.{i}" for i in optim_states[name] if i >= count]
        if missing or unexpected:
            raise AgentStateError(
                f"agent state does not match this agent (config {self.config.value}/{self.config.actor}): "
                f"missing or mismatched {sorted(missing)[:10]}, unexpected {sorted(unexpected)[:10]}"
                f" ({len(missing)} missing, {len(unexpected)} unexpected)"
            )
        for name, module in self.modules.items():
            module.load_state_dict(module_states[name])
        for name, optimizer in self.optimizers.items():
            param_groups = optimizer.state_dict()["param_groups"]
            optimizer.load_state_dict({"state": optim_states[name], "param_groups": param_groups})
        self.updates = int(state["agent.updates"])
        self.generator.set_state(state["agent.rng"].clone())

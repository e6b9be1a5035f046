"""LWDAgent: config, batch validation, update order effects, divergence guard, resume and baselines."""

from __future__ import annotations

import math

import pytest
import torch
from lwd_learner.agent import AgentConfig, AgentStateError, LWDAgent, TrainingDivergedError, TransitionBatch
from lwd_learner.agent_config import AgentConfigError
from lwd_learner.qam import lean_adjoint, memoryless_rollout, terminal_adjoint
from lwd_learner.transition import TransitionBatchError
from policy.tiny_policy import TinyFlow
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

F, H, D, B = 6, 3, 2, 16


def make_batch(seed: int = 0, size: int = B) -> TransitionBatch:
    """Random transitions: a quarter intervention chunks and half demonstration chunks, all operator-driven."""
    generator = torch.Generator().manual_seed(seed)
    done = torch.rand(size, generator=generator) < 0.3
    is_intervention, is_demo = torch.arange(size) % 4 == 1, torch.arange(size) % 2 == 0
    return TransitionBatch(
        features=torch.randn(size, F, generator=generator),
        actions=torch.rand(size, H, D, generator=generator) * 2 - 1,
        action_mask=torch.ones(size, H, dtype=torch.bool),
        operator_mask=(is_intervention | is_demo).unsqueeze(1).expand(size, H).clone(),
        reward=done.float(),
        next_features=torch.randn(size, F, generator=generator),
        done=done,
        discount=torch.where(done, 0.0, 0.99**H),
        is_intervention=is_intervention,
        is_demo=is_demo,
    )


def make_agent(**overrides) -> LWDAgent:
    torch.manual_seed(0)
    config = AgentConfig(feature_dim=F, horizon=H, action_dim=D, hidden_dim=32, flow_steps=4, **overrides)
    return LWDAgent(config, TinyFlow(F, H, D))


def params(module: nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[Tensor], b: list[Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_config_round_trips_through_json_and_rejects_bad_values():
    config = AgentConfig(feature_dim=128, value="expectile", actor="bc", lam=0.3, n_step=3)
    assert AgentConfig.from_json(config.to_json()) == config
    assert config.chunk_discount == pytest.approx(0.99 ** (3 * 20))
    with pytest.raises(AgentConfigError, match="value must be one of"):
        AgentConfig(feature_dim=8, value="cql")
    with pytest.raises(AgentConfigError, match="unknown AgentConfig fields"):
        AgentConfig.from_dict({"feature_dim": 8, "learning_rate": 1.0})
    with pytest.raises(AgentConfigError, match="does not parse"):
        AgentConfig.from_json("{not json")


def test_batch_validation_names_the_bad_field():
    agent = make_agent()
    wrong_shape = make_batch()
    wrong_shape.actions = wrong_shape.actions[:, :2]
    with pytest.raises(TransitionBatchError, match="actions must have shape"):
        agent.update(wrong_shape)
    bootstrap_after_terminal = make_batch()
    bootstrap_after_terminal.done[0] = True
    bootstrap_after_terminal.discount[0] = 0.5
    with pytest.raises(TransitionBatchError, match="discount must be 0 on terminal"):
        agent.update(bootstrap_after_terminal)
    nan_reward = make_batch()
    nan_reward.reward[1] = float("nan")
    with pytest.raises(TransitionBatchError, match="reward contains NaN"):
        agent.update(nan_reward)
    assert agent.updates == 0


def test_full_update_logs_every_figure_and_moves_every_trainable_part():
    agent = make_agent()
    before = {name: params(module) for name, module in agent.modules.items()}
    figures = agent.update(make_batch())
    expected = {
        "value_loss", "critic_loss", "actor_loss", "bc_loss", "tau_mean", "tau_min", "tau_max", "value_entropy",
        "grad_q_norm", "actor_base_divergence", "q_mean", "intervention_fraction", "demo_fraction",
    }  # fmt: skip
    assert expected <= set(figures)
    assert all(math.isfinite(value) for value in figures.values())
    assert figures["intervention_fraction"] == pytest.approx(0.25) and figures["demo_fraction"] == pytest.approx(0.5)
    assert 0.0 < figures["value_entropy"] <= 1.0
    assert figures["tau_min"] <= figures["tau_mean"] <= figures["tau_max"]
    # The first update starts from f_θ = f_β̄, so the actor–base divergence is 0 up to rounding.
    assert figures["actor_base_divergence"] < 1e-10
    for name in ("actor", "base", "value", "critic", "target_critic", "base_reference"):
        assert not same(before[name], params(agent.modules[name])), name


def test_qam_loss_and_divergence_when_the_fine_flow_differs_from_the_base_reference():
    """f_θ, f_β and f_β̄ all differ: the update rolls out f_θ, takes the lean adjoint through the EMA reference f_β̄
    from the online critic's mean, and reports L_QAM and ‖f_θ − f_β̄‖² of that rollout, recomputed here step by step
    with the agent's own noise."""
    agent = make_agent()
    with torch.no_grad():
        for module, scale in ((agent.fine_flow, 0.3), (agent.base_flow, 0.2)):
            for parameter in module.parameters():
                parameter.add_(scale * torch.randn_like(parameter))
    batch = make_batch()
    s, config = batch.features, agent.config
    generator = torch.Generator().set_state(agent.generator.get_state())
    x0 = torch.randn(batch.actions.shape, generator=generator)
    noises = torch.randn((config.flow_steps - 1, *batch.actions.shape), generator=generator)
    trajectory = memoryless_rollout(agent.fine_flow, s, x0, noises)
    adjoint_final, _ = terminal_adjoint(
        lambda actions: agent.critic(s, actions).mean(dim=0), trajectory.xs[-1], config.lam, config.action_clip
    )
    adjoints, _ = lean_adjoint(agent.base_reference, s, trajectory, adjoint_final)
    loss, divergence = torch.zeros(B), torch.zeros(())
    with torch.no_grad():
        for i in range(config.flow_steps):
            t = torch.full((B,), float(trajectory.times[i]))
            gap = agent.fine_flow(trajectory.xs[i], t, s) - agent.base_reference(trajectory.xs[i], t, s)
            sigma = trajectory.sigmas[i]
            loss += (2 * gap / sigma + sigma * adjoints[i]).square().sum(dim=(1, 2))
            divergence += gap.square().sum(dim=(1, 2)).mean() / config.flow_steps
    figures = agent.update(batch)
    assert figures["actor_base_divergence"] == pytest.approx(float(divergence), rel=1e-4) and divergence > 1e-3
    assert figures["actor_loss"] == pytest.approx(float(loss.mean()), rel=1e-4)


@pytest.mark.parametrize("actor", ["qam", "bc"])
def test_flows_train_even_when_the_given_expert_is_frozen(actor):
    """The trainer hands over the pretrained policy's expert with requires_grad off; the agent's copies must learn."""
    torch.manual_seed(0)
    frozen = TinyFlow(F, H, D).requires_grad_(False)
    config = AgentConfig(feature_dim=F, horizon=H, action_dim=D, hidden_dim=32, flow_steps=4, actor=actor)
    agent = LWDAgent(config, frozen)
    before = params(agent.fine_flow)
    for seed in range(3):
        figures = agent.update(make_batch(seed))
    assert not same(before, params(agent.fine_flow))
    if actor == "qam":
        assert figures["actor_base_divergence"] > 1e-8
    assert not any(p.requires_grad for p in frozen.parameters()), "the caller's expert is left as it was"


def test_target_critic_is_an_ema_of_the_online_critic():
    agent = make_agent(ema=0.1)
    target_before = params(agent.target_critic)
    agent.update(make_batch())
    for old, new, online in zip(target_before, params(agent.target_critic), params(agent.critic), strict=True):
        torch.testing.assert_close(new, old + 0.1 * (online - old))


@pytest.mark.parametrize("actor", ["qam", "bc"])
def test_the_published_flow_steps_at_actor_lr_and_the_rest_at_lr(actor):
    """Adam's first step moves every parameter by about its learning rate, so each module's largest change shows
    which rate it stepped at."""
    agent = make_agent(actor=actor, lr=1e-2, actor_lr=1e-5)
    before = {name: params(module) for name, module in agent.modules.items()}
    agent.update(make_batch())
    for name in agent.optimizers:
        moved = zip(before[name], params(agent.modules[name]), strict=True)
        largest = max((new - old).abs().max().item() for old, new in moved)
        expected = 1e-5 if name == "actor" else 1e-2
        assert expected / 2 < largest <= expected * 1.01, (name, largest)


def test_bc_baseline_trains_only_the_fine_tuned_flow():
    agent = make_agent(actor="bc")
    assert set(agent.modules) == {"actor"}
    before = params(agent.policy_action_expert())
    figures = agent.update(make_batch())
    assert set(figures) == {"bc_loss", "intervention_fraction", "demo_fraction"}
    assert not same(before, params(agent.policy_action_expert()))


def test_base_flow_clones_only_the_operator_unless_told_to_clone_everything():
    autonomous_only = make_batch()
    autonomous_only.is_intervention[:] = False
    autonomous_only.is_demo[:] = False
    autonomous_only.operator_mask[:] = False
    operator = make_agent()
    before = params(operator.base_flow)
    figures = operator.update(autonomous_only)
    assert figures["bc_loss"] == 0.0 and same(before, params(operator.base_flow))
    assert not same(params(operator.critic), params(make_agent().critic)), "the critic still learns from it"
    everything = make_agent(base_data="all")
    everything.update(autonomous_only)
    assert not same(before, params(everything.base_flow))
    with pytest.raises(AgentConfigError, match="base_data must be one of"):
        make_agent(base_data="demos")


@pytest.mark.parametrize("actor", ["qam", "bc"])
def test_a_clone_batch_is_what_the_cloning_flow_learns_from(actor):
    """With a clone batch the cloning flow (f_β, or f_θ for the BC actor) learns from it, not from the main batch;
    the critic still learns from the main batch."""
    nothing_to_clone = make_batch()
    nothing_to_clone.operator_mask[:] = False
    agent = make_agent(actor=actor)
    flow = agent.policy_action_expert() if actor == "bc" else agent.base_flow
    before = params(flow)
    figures = agent.update(nothing_to_clone, make_batch(seed=1))
    assert figures["bc_loss"] > 0.0 and not same(before, params(flow))
    unchanged = make_agent(actor=actor)
    flow = unchanged.policy_action_expert() if actor == "bc" else unchanged.base_flow
    assert unchanged.update(make_batch(seed=1), nothing_to_clone)["bc_loss"] == 0.0
    assert same(before, params(flow))
    if actor == "qam":
        main_only, with_clone = make_agent(), make_agent()
        main_only.update(make_batch(seed=2))
        with_clone.update(make_batch(seed=2), make_batch(seed=3))
        assert same(params(main_only.critic), params(with_clone.critic))


class StepwiseFlow(nn.Module):
    """A velocity field whose output at each chunk step reads only that step's x (and t, features)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D + 1 + F, 32), nn.SiLU(), nn.Linear(32, D))

    def forward(self, x: Tensor, t: Tensor, features: Tensor) -> Tensor:
        context = torch.cat([t.unsqueeze(1), features], dim=1).unsqueeze(1).expand(-1, x.shape[1], -1)
        return self.net(torch.cat([x, context], dim=2))


@pytest.mark.parametrize("actor", ["qam", "bc"])
def test_padding_past_the_episode_end_is_never_cloned(actor):
    """Two batches that differ only in padded steps train the cloning flow (f_β, or f_θ for the BC actor) alike.

    The flow is step-wise, so a padded step cannot reach a real step's velocity through the flow's input either.
    """
    batch = make_batch()
    batch.action_mask[:, 1:] = torch.arange(H - 1) < torch.arange(B).remainder(H).unsqueeze(1)
    batch.operator_mask &= batch.action_mask
    other = make_batch()
    other.actions = torch.where(batch.action_mask.unsqueeze(-1), batch.actions, -batch.actions)
    other.action_mask, other.operator_mask = batch.action_mask.clone(), batch.operator_mask.clone()
    assert not torch.equal(batch.actions, other.actions)

    def build() -> LWDAgent:
        torch.manual_seed(0)
        config = AgentConfig(feature_dim=F, horizon=H, action_dim=D, hidden_dim=32, flow_steps=4, actor=actor)
        return LWDAgent(config, StepwiseFlow())

    first, second = build(), build()
    losses = first.update(batch)["bc_loss"], second.update(other)["bc_loss"]
    assert losses[0] == losses[1]
    flow = "base" if actor == "qam" else "actor"
    assert same(params(first.modules[flow]), params(second.modules[flow]))


@pytest.mark.parametrize("actor", ["qam", "bc"])
def test_only_the_operators_steps_are_cloned(actor):
    """Intervention chunks whose operator steps end at a hand-back: the policy's steps after it are not cloned by
    the base flow (or by f_θ as HG-DAgger), unless base_data="all" clones every executed step."""
    batch = make_batch()
    handed_back = batch.is_intervention
    batch.operator_mask[handed_back, 1:] = False
    other = make_batch()
    other.operator_mask = batch.operator_mask.clone()
    other.actions = torch.where(batch.operator_mask.unsqueeze(-1) | ~handed_back.view(B, 1, 1), batch.actions, 0.0)
    assert not torch.equal(batch.actions, other.actions)
    flow = "base" if actor == "qam" else "actor"

    def trained(data: TransitionBatch, base_data: str) -> list[Tensor]:
        torch.manual_seed(0)
        config = AgentConfig(
            feature_dim=F, horizon=H, action_dim=D, hidden_dim=32, flow_steps=4, actor=actor, base_data=base_data
        )
        agent = LWDAgent(config, StepwiseFlow())
        agent.update(data)
        return params(agent.modules[flow])

    assert same(trained(batch, "operator"), trained(other, "operator"))
    assert not same(trained(batch, "all"), trained(other, "all"))


def test_a_chunk_starts_inside_its_episode():
    batch = make_batch()
    batch.action_mask[3, 0] = False
    with pytest.raises(TransitionBatchError, match="action_mask must be True on every chunk's first step"):
        make_agent().update(batch)
    padding_cloned = make_batch()
    padding_cloned.action_mask[0, -1] = False
    with pytest.raises(TransitionBatchError, match="operator_mask must lie within action_mask"):
        make_agent().update(padding_cloned)


def test_expectile_ablation_uses_a_scalar_value():
    agent = make_agent(value="expectile")
    features = torch.randn(5, F)
    assert agent.value_head(features).shape == (5,)
    figures = agent.update(make_batch())
    assert "tau_mean" not in figures and math.isfinite(figures["value_loss"])


def test_policy_action_expert_is_a_copy_of_the_given_expert():
    expert = TinyFlow(F, H, D)
    agent = LWDAgent(AgentConfig(feature_dim=F, horizon=H, action_dim=D, hidden_dim=16, flow_steps=3), expert)
    published = agent.policy_action_expert()
    assert published is agent.fine_flow and published is not expert and agent.base_flow is not published
    assert same(params(expert), params(published))
    agent.update(make_batch())
    assert not same(params(expert), params(published))
    assert agent.sample_actions(torch.randn(7, F)).shape == (7, H, D)


def test_non_finite_loss_raises_before_any_parameter_or_optimizer_state_changes():
    agent = make_agent()
    agent.update(make_batch(0))
    with torch.no_grad():
        agent.critic.heads[0][0].weight[0, 0] = float("nan")
    state = agent.state_dict()
    with pytest.raises(TrainingDivergedError, match="critic_loss=nan"):
        agent.update(make_batch(1))
    after = agent.state_dict()
    assert agent.updates == 1
    for key, value in state.items():
        assert torch.equal(value, after[key]) or (value.isnan() == after[key].isnan()).all(), key


def test_grad_sync_sees_every_trainable_parameter_before_the_step():
    seen: list[int] = []

    def zero_all(parameters: list[nn.Parameter]) -> None:
        seen.append(len(parameters))
        for parameter in parameters:
            parameter.grad = torch.zeros_like(parameter)

    agent = make_agent()
    agent.grad_sync = zero_all
    before = params(agent.policy_action_expert())
    agent.update(make_batch())
    trainable = sum(len(list(agent.modules[n].parameters())) for n in ("actor", "base", "value", "critic"))
    assert seen == [trainable]
    assert same(before, params(agent.policy_action_expert()))


def test_state_dict_round_trips_through_safetensors_and_resumes_identically(tmp_path):
    agent = make_agent()
    for seed in range(3):
        agent.update(make_batch(seed))
    path = tmp_path / "agent.safetensors"
    save_file(agent.state_dict(), str(path))
    resumed = make_agent()
    resumed.load_state_dict(load_file(str(path)))
    assert resumed.updates == 3
    assert agent.update(make_batch(9)) == resumed.update(make_batch(9))
    for name, module in agent.modules.items():
        assert same(params(module), params(resumed.modules[name])), name


def test_load_state_dict_rejects_another_agents_state_without_changing_anything():
    qam_state = make_agent().state_dict()
    bc_agent = make_agent(actor="bc")
    before = params(bc_agent.policy_action_expert())
    with pytest.raises(AgentStateError, match="unexpected"):
        bc_agent.load_state_dict(qam_state)
    assert same(before, params(bc_agent.policy_action_expert()))
    wider = LWDAgent(
        AgentConfig(feature_dim=F, horizon=H, action_dim=D, hidden_dim=48, flow_steps=4), TinyFlow(F, H, D)
    )
    with pytest.raises(AgentStateError, match="shape"):
        wider.load_state_dict(qam_state)


def _bandit_batch(generator: torch.Generator, size: int = 256) -> TransitionBatch:
    """One state, one-step episodes; data chunks [1, 2] from two modes around ∓0.6, reward 1 on the + mode."""
    sign = torch.where(torch.rand(size, 1, 1, generator=generator) < 0.5, -1.0, 1.0)
    actions = 0.6 * sign + 0.05 * torch.randn(size, 1, 2, generator=generator)
    return TransitionBatch(
        features=torch.zeros(size, 1),
        actions=actions,
        action_mask=torch.ones(size, 1, dtype=torch.bool),
        operator_mask=torch.ones(size, 1, dtype=torch.bool),
        reward=(sign.flatten() > 0).float(),
        next_features=torch.zeros(size, 1),
        done=torch.ones(size, dtype=torch.bool),
        discount=torch.zeros(size),
        is_intervention=torch.zeros(size, dtype=torch.bool),
        is_demo=torch.ones(size, dtype=torch.bool),
    )


def _plus_mode_fraction(actions: Tensor) -> tuple[float, float]:
    flat = actions.flatten(1)
    near_plus = ((flat - 0.6).abs() < 0.25).all(dim=1)
    near_minus = ((flat + 0.6).abs() < 0.25).all(dim=1)
    return near_plus.float().mean().item(), (near_plus | near_minus).float().mean().item()


def test_bc_pretraining_then_lwd_updates_shift_the_policy_to_the_rewarded_mode():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    bc_config = AgentConfig(feature_dim=1, horizon=1, action_dim=2, flow_steps=8, actor="bc", lr=3e-3)
    pretrain = LWDAgent(bc_config, TinyFlow(1, 1, 2, width=64))
    for _ in range(800):
        pretrain.update(_bandit_batch(generator))
    config = AgentConfig(
        feature_dim=1, horizon=1, action_dim=2, flow_steps=8, hidden_dim=64, lam=0.1, lr=1e-3, ema=0.05, action_clip=1.0
    )
    agent = LWDAgent(config, pretrain.policy_action_expert())
    noise = torch.randn(4000, 1, 2, generator=generator)
    probe = torch.zeros(4000, 1)
    base_plus, base_support = _plus_mode_fraction(agent.sample_actions(probe, noise))
    for _ in range(100):
        figures = agent.update(_bandit_batch(generator))
    fine_plus, fine_support = _plus_mode_fraction(agent.sample_actions(probe, noise))
    assert 0.3 < base_plus < 0.7 and base_support > 0.8
    assert fine_plus > base_plus + 0.2
    assert fine_support > 0.8
    assert figures["actor_base_divergence"] > 0.0 and figures["grad_q_norm"] > 0.0


def test_the_heads_start_from_the_config_seed_whatever_the_global_rng():
    """A trainer run is reproducible from its settings: the value and critic heads do not draw from the global RNG."""
    torch.manual_seed(0)
    expert = TinyFlow(F, H, D)

    def build(seed: int, global_seed: int) -> LWDAgent:
        torch.manual_seed(global_seed)
        config = AgentConfig(feature_dim=F, horizon=H, action_dim=D, hidden_dim=32, flow_steps=4, seed=seed)
        before = torch.get_rng_state()
        agent = LWDAgent(config, expert)
        assert torch.equal(torch.get_rng_state(), before), "building an agent leaves the global RNG as it was"
        return agent

    first, second, other = build(7, global_seed=1), build(7, global_seed=2), build(8, global_seed=1)
    for name in ("value", "critic"):
        pairs = zip(first.modules[name].parameters(), second.modules[name].parameters(), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs), name
        assert not torch.equal(next(first.modules[name].parameters()), next(other.modules[name].parameters())), name

"""SAC: its losses, target and temperature against hand-computed values, the tanh-Gaussian actor's density, the Q
ensemble's independence, config checks, and learning Reach (state) from a replay buffer."""

import math

import pytest
import torch

from embodied.algorithms import sac
from embodied.config.schema import validate
from embodied.data.replay import sample_mixture
from policies.critics import QEnsemble
from policies.tanh_mlp import TanhGaussianMLPPolicy
from tests.test_training import config


class FixedActor:
    """A stand-in actor: features are the observation itself, every sample is ``action`` with ``logprob``."""

    def __init__(self, action, logprob):
        self.action, self.logprob = action, logprob

    def rsample(self, obs):
        return self.action, self.logprob

    def features(self, obs):
        return obs["state"]


def test_critic_target_is_reward_plus_discounted_soft_min_of_the_target_critics():
    actor = FixedActor(torch.zeros(2, 1, 1), torch.tensor([-1.0, 2.0]))
    q_next = torch.tensor([[5.0, 1.0], [3.0, 4.0]])  # [E=2, B=2]
    batch = {"next_obs": {"state": torch.zeros(2, 3)}, "reward": torch.tensor([1.0, 0.5]),
             "discount": torch.tensor([0.9, 0.0])}  # the second transition ended by termination
    target = sac.critic_target(actor, lambda features, action: q_next, batch, torch.tensor(0.5), subset=2)
    # row 0: 1 + 0.9 * (min(5, 3) - 0.5 * -1) = 1 + 0.9 * 3.5; row 1: 0.5 + 0 * anything
    torch.testing.assert_close(target, torch.tensor([1.0 + 0.9 * 3.5, 0.5]))


def test_critic_target_without_backup_entropy_leaves_out_the_log_prob_term():
    actor = FixedActor(torch.zeros(2, 1, 1), torch.tensor([-1.0, 2.0]))
    q_next = torch.tensor([[5.0, 1.0], [3.0, 4.0]])  # [E=2, B=2]
    batch = {"next_obs": {"state": torch.zeros(2, 3)}, "reward": torch.tensor([1.0, 0.5]),
             "discount": torch.tensor([0.9, 0.9])}
    target = sac.critic_target(actor, lambda features, action: q_next, batch, torch.tensor(0.5), subset=2,
                               backup_entropy=False)
    torch.testing.assert_close(target, torch.tensor([1.0 + 0.9 * 3.0, 0.5 + 0.9 * 1.0]))  # min Q' alone


def test_critic_target_takes_the_minimum_over_a_random_subset_of_members():
    actor = FixedActor(torch.zeros(1, 1, 1), torch.zeros(1))
    q_next = torch.tensor([[1.0], [2.0], [3.0], [4.0]])  # [E=4, B=1]
    batch = {"next_obs": {"state": torch.zeros(1, 3)}, "reward": torch.zeros(1), "discount": torch.ones(1)}
    seen = set()
    for seed in range(40):
        generator = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(4, generator=torch.Generator().manual_seed(seed))[:2]
        target = sac.critic_target(actor, lambda f, a: q_next, batch, torch.tensor(0.0), 2, generator)
        assert target.item() == q_next[chosen].min().item()
        seen.add(target.item())
    assert seen == {1.0, 2.0, 3.0}  # min of 2 of 4: never 4, and not always the global minimum


def test_critic_loss_sums_each_members_mean_squared_error_and_its_gradient():
    q = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)  # [E, B]
    target = torch.tensor([0.0, 1.0])
    loss = sac.critic_loss(q, target)
    assert loss.item() == pytest.approx((1 + 1) / 2 + (9 + 9) / 2)
    loss.backward()
    torch.testing.assert_close(q.grad, torch.tensor([[1.0, 1.0], [3.0, 3.0]]))  # 2 (q - target) / B


def test_actor_loss_is_alpha_logprob_minus_the_critics_min_or_mean():
    action = torch.zeros(2, 1, 1)
    actor = FixedActor(action, torch.tensor([-1.0, 1.0]))
    q = torch.tensor([[2.0, 6.0], [4.0, 0.0]])  # [E, B]
    obs = {"state": torch.zeros(2, 3)}
    loss, _ = sac.actor_loss(actor, lambda f, a: q, obs, torch.tensor(0.5), "min")
    assert loss.item() == pytest.approx(((0.5 * -1 - 2) + (0.5 * 1 - 0)) / 2)
    loss, _ = sac.actor_loss(actor, lambda f, a: q, obs, torch.tensor(0.5), "mean")
    assert loss.item() == pytest.approx(((0.5 * -1 - 3) + (0.5 * 1 - 3)) / 2)


def test_temperature_falls_while_the_entropy_is_above_its_target_and_rises_below():
    log_alpha = torch.tensor(math.log(0.5), requires_grad=True)
    logprob = torch.tensor([-1.0, -3.0])  # entropy about 2
    loss = sac.temperature_loss(log_alpha, logprob, target_entropy=-1.0)
    assert loss.item() == pytest.approx(-0.5 * ((-1 - 1) + (-3 - 1)) / 2)  # = 1.5
    loss.backward()
    assert log_alpha.grad.item() == pytest.approx(1.5)  # positive: a gradient step lowers alpha
    log_alpha.grad = None
    sac.temperature_loss(log_alpha, torch.tensor([3.0]), target_entropy=-1.0).backward()  # entropy -3 < -1
    assert log_alpha.grad.item() < 0


def test_soft_update_moves_the_target_tau_of_the_way():
    source, target = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    with torch.no_grad():
        source.weight.fill_(4.0), source.bias.fill_(-4.0), target.weight.fill_(0.0), target.bias.fill_(0.0)
    sac.soft_update(target, source, tau=0.25)
    assert target.weight.item() == pytest.approx(1.0) and target.bias.item() == pytest.approx(-1.0)


def test_tanh_policy_density_matches_torchs_tanh_transformed_gaussian():
    torch.manual_seed(0)
    policy = TanhGaussianMLPPolicy({"obs_dim": 3, "action_dim": 2, "obs_keys": ["state"], "hidden": [16]})
    with torch.no_grad():
        policy.actor[-1].weight.normal_(0, 0.5)  # a spread of means and log-stds, not the near-zero init
    obs = {"state": torch.randn(5, 3)}
    action, logprob = policy.rsample(obs)
    assert action.shape == (5, 1, 2) and action.abs().max() < 1
    gaussian = policy._distribution(policy.features(obs))
    mean = gaussian.mean
    reference = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, gaussian.stddev), torch.distributions.transforms.TanhTransform())
    torch.testing.assert_close(logprob, reference.log_prob(action).sum(dim=(1, 2)), rtol=1e-3, atol=1e-3)
    evaluated, _, _ = policy.evaluate(obs, action)  # the inverse through atanh gives the same density
    torch.testing.assert_close(evaluated.sum(dim=(1, 2)), logprob, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(policy.deterministic_action(obs), torch.tanh(mean))


def test_q_ensemble_members_are_independent_networks():
    critic = QEnsemble(obs_dim=3, action_dim=2, hidden=[8, 8], members=3)
    q = critic(torch.randn(4, 3), torch.randn(4, 2))
    assert q.shape == (3, 4)
    assert not torch.allclose(q[0], q[1])  # different initial weights
    q[1].sum().backward()
    for layer in [*critic.hidden, critic.out]:
        assert layer.weight.grad[1].abs().sum() > 0
        assert layer.weight.grad[[0, 2]].abs().sum() == 0  # member 1's output touches member 1's weights only


def test_sac_refuses_a_policy_without_reparameterised_samples(tmp_path):
    cfg = config(tmp_path, algo__name="sac", policy__name="mlp")
    with pytest.raises(ValueError, match="policy=tanh_mlp"):
        validate(cfg)
    cfg = config(tmp_path, algo__name="sac", policy__name="tanh_mlp", algo__critic_subset=3)
    with pytest.raises(ValueError, match="algo.critic_subset"):
        validate(cfg)
    cfg = config(tmp_path, algo__name="sac", policy__name="tanh_mlp", algo__pretrained_anchor_coef=1.0)
    with pytest.raises(ValueError, match="anchors the actor to a pre-trained one: set algo.pretrain_steps >= 1"):
        validate(cfg)  # nothing pre-trained to anchor to


def test_tanh_policy_refuses_an_action_box_other_than_minus_one_to_one():
    import dataclasses

    from sims import make_env

    env = make_env(task="Reach", num_envs=1)
    obs, _ = env.reset(seed=0)
    wide = dataclasses.replace(env.action_spec, low=-2.0, high=2.0)
    with pytest.raises(ValueError, match=r"acts in \[-1, 1\] but this env's actions span \[-2.0, 2.0\]"):
        TanhGaussianMLPPolicy.for_env({}, env.observation_spec, wide, obs)
    assert TanhGaussianMLPPolicy.for_env({}, env.observation_spec, env.action_spec, obs).action_dim == env.action_spec.dim
    env.close()


@pytest.mark.parametrize("backend", ["single", "local"])
def test_sac_learns_reach_from_its_replay_buffer(tmp_path, backend):
    from embodied.runner.offpolicy import OffPolicyTrainer

    # PPO needs 24k env-steps here (test_ppo_learns_reach); SAC: 0.969 after 8k (seed 1), random actions ~0.1; with
    # two env workers acting on weights up to 50 steps old (dist=local): 0.906
    cfg = config(tmp_path, algo__name="sac", policy__name="tanh_mlp", env__num_envs=16,
                 algo__learning_starts=2000, experiment__total_env_steps=8000, experiment__eval_interval=0,
                 dist__backend=backend, dist__num_env_workers=2 if backend == "local" else 1)
    trainer = OffPolicyTrainer(cfg)
    metrics = trainer.train()
    assert metrics["success_once"] >= 0.8, metrics
    assert trainer.counters["updates"] == (8000 - 2000) * 0.5 + 8  # utd 0.5 from the step that reaches 2000



def test_above_one_update_per_env_step_the_actor_steps_once_per_env_step_after_the_critics(tmp_path, monkeypatch):
    import embodied.runner.offpolicy as offpolicy

    cfg = config(tmp_path, algo__name="rlpd", policy__name="tanh_mlp", env__num_envs=4, algo__demo_episodes=4,
                 algo__batch_size=8, algo__learning_starts=0, algo__rollout_steps=3, algo__utd_ratio=4.0)
    trainer = offpolicy.OffPolicyTrainer(cfg)
    assert trainer.target_entropy == -0.5 * trainer.env.action_spec.dim  # RLPD's -|A| / 2
    actor_steps = []
    actor_loss = offpolicy.sac.actor_loss
    monkeypatch.setattr(offpolicy.sac, "actor_loss", lambda *args: actor_steps.append(1) or actor_loss(*args))
    stats, _ = trainer._collect_and_learn()
    # the first step stores the transition the second completes; then 2 steps of 4 envs, 4 critic updates each
    assert trainer.counters["updates"] == 2 * 4 * 4
    assert len(actor_steps) == 2 * 4  # one actor step per env-step
    assert {"critic_loss", "actor_loss", "temperature"} <= set(stats)


def test_the_actor_waits_for_the_critics_warm_up_then_steps_as_the_utd_ratio_says():
    assert [sac.steps_actor(u, 4.0, 20) for u in range(17, 33)] == [False] * 7 + [True, False, False, False] * 2 + \
        [True]  # update 24 is the first after the 20 warm-up ones that 4 divides
    assert [sac.steps_actor(u, 0.5, 2) for u in range(1, 5)] == [False, False, True, True]  # every one below utd 1


def test_actor_warmup_updates_holds_the_actor_while_the_critics_fit(tmp_path, monkeypatch):
    import embodied.runner.offpolicy as offpolicy

    cfg = config(tmp_path, algo__name="rlpd", policy__name="tanh_mlp", env__num_envs=4, algo__demo_episodes=4,
                 algo__batch_size=8, algo__learning_starts=0, algo__rollout_steps=3, algo__utd_ratio=4.0,
                 algo__actor_warmup_updates=20)
    trainer = offpolicy.OffPolicyTrainer(cfg)
    actor_steps = []
    actor_loss = offpolicy.sac.actor_loss
    monkeypatch.setattr(offpolicy.sac, "actor_loss", lambda *args: actor_steps.append(1) or actor_loss(*args))
    trainer._collect_and_learn()
    assert trainer.counters["updates"] == 32 and len(actor_steps) == 3  # updates 24, 28 and 32


def test_rlpd_collects_expert_episodes_into_a_demo_buffer_and_samples_half_of_each_batch_from_it(tmp_path,
                                                                                                  monkeypatch):
    import embodied.runner.offpolicy as offpolicy

    cfg = config(tmp_path, algo__name="rlpd", policy__name="tanh_mlp", env__num_envs=4, algo__demo_episodes=6,
                 algo__batch_size=64, algo__learning_starts=100, algo__rollout_steps=20, experiment__total_env_steps=80)
    trainer = offpolicy.OffPolicyTrainer(cfg)
    demos = trainer.demos
    expert_states = demos.steps * demos.num_envs  # one env per expert episode
    assert trainer.policy.normalizer.count == expert_states  # the statistics include what random actions never reach
    ends = (demos.store["terminated"] | demos.store["truncated"])[:demos.steps]  # [steps, envs]
    assert ends.sum() == 6  # the episodes asked for
    assert int(torch.nonzero(ends.any(1)).max()) < len(demos)  # their final transitions can be sampled too
    trainer._collect_and_learn()  # 20 steps of uniform random actions, no update yet
    online_reward = trainer.buffer.store["reward"][:trainer.buffer.steps].mean()
    assert demos.store["reward"][:demos.steps].mean() > online_reward + 0.2  # Reach's dense reward: expert > random
    sources = []

    def recording_mixture(buffers, ratios, batch_size, generator):
        batch = sample_mixture(buffers, ratios, batch_size, generator)
        sources.append(dict(zip(buffers, [int((batch["source"] == i).sum()) for i in range(len(buffers))])))
        return batch

    monkeypatch.setattr(offpolicy, "sample_mixture", recording_mixture)
    trainer.update()
    assert sources == [{"online": 32, "demos": 32}]

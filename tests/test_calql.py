"""Offline pre-training and demonstration terms of the off-policy algorithms against hand-computed values: Cal-QL's
conservative gap (calibrated by returns-to-go) and the Q-filtered behaviour-cloning term."""

import math

import pytest

import torch

from embodied.algorithms import sac
from embodied.algorithms.calql import calql_regularizer

POLICY_ACTION = 0.5


class FixedActor:
    """Features are the observation itself; every sample is POLICY_ACTION with log-probability -1."""

    def rsample(self, obs):
        rows = obs["state"].shape[0]
        return torch.full((rows, 1, 1), POLICY_ACTION), torch.full((rows,), -1.0)

    def features(self, obs):
        return obs["state"]


def lookup_critic(features, action):
    """One member: Q 3 for the policy's action, 1 for any other (the uniform samples)."""
    return torch.where(action[:, 0] == POLICY_ACTION, 3.0, 1.0)[None]  # [1, B]


def test_calql_gap_is_logsumexp_of_weighted_sampled_q_minus_data_q_with_policy_q_floored_at_the_return():
    batch = {"obs": {"state": torch.zeros(1, 2)}, "next_obs": {"state": torch.ones(1, 2)}}
    q_data = torch.tensor([[2.0]], requires_grad=True)  # [E=1, B=1]
    # returns-to-go 4 > Q 3 of the policy's actions: both policy terms become 4 - (-1) = 5
    gap = calql_regularizer(FixedActor(), lookup_critic, batch, q_data, torch.tensor([4.0]), num_actions=1)
    uniform = 1.0 + math.log(2.0)  # Q 1 of the uniform action minus its log density log(1/2)
    assert gap.item() == torch.logsumexp(torch.tensor([uniform, 5.0, 5.0]), 0).item() - 2.0
    gap.backward()
    assert q_data.grad.item() == -1.0  # the data's Q is pushed up, one per member and row
    # a return-to-go below Q leaves the policy's Q as it is: 3 - (-1) = 4
    low = calql_regularizer(FixedActor(), lookup_critic, batch, q_data, torch.tensor([0.0]), num_actions=1)
    assert low.item() == torch.logsumexp(torch.tensor([uniform, 4.0, 4.0]), 0).item() - 2.0


class ParameterActor:
    """Deterministic actions are a parameter [D, 1, A]; features are the observation."""

    def __init__(self, modes):
        self.modes = torch.nn.Parameter(torch.tensor(modes))

    def deterministic_action(self, obs):
        return self.modes

    def features(self, obs):
        return obs["state"]


def test_bc_term_pulls_the_policy_to_demonstrations_only_where_q_rates_them_higher():
    actor = ParameterActor([[[1.0]], [[0.5]]])  # D=2 rows, A=1
    demo_action = torch.tensor([[0.0], [0.0]])
    preferred = torch.tensor([0.0, 0.5])  # Q peaks at the demo action in row 0, at the policy's in row 1

    def critic(features, action):
        return -(action[:, 0] - preferred).pow(2)[None]  # [E=1, D]

    loss = sac.q_filtered_bc_loss(actor, critic, {"state": torch.zeros(2, 3)}, demo_action)
    # row 0 kept (Q 0 > -1), row 1 filtered (Q -0.25 < 0); scale mean|Q| = (0 + 0.25 + 1 + 0) / 4
    assert loss.item() == 0.3125 * (1.0 ** 2 + 0.0) / 2
    loss.backward()
    torch.testing.assert_close(actor.modes.grad.flatten(), torch.tensor([0.3125 * 2 * 1.0 / 2, 0.0]))
    unfiltered = sac.q_filtered_bc_loss(actor, critic, {"state": torch.zeros(2, 3)}, demo_action, q_filter=False)
    assert unfiltered.item() == 0.3125 * (1.0 ** 2 + 0.5 ** 2) / 2  # offline pre-training clones every row


def test_wsrl_pretrains_on_demos_then_its_policy_plays_the_warm_up_and_online_batches_skip_the_demos(tmp_path,
                                                                                                     monkeypatch):
    import embodied.runner.offpolicy as offpolicy
    from embodied.runner.logger import RunLogger
    from tests.test_training import config

    cfg = config(tmp_path, algo__name="wsrl", policy__name="tanh_mlp", env__num_envs=4, algo__demo_episodes=4,
                 algo__pretrain_steps=3, algo__batch_size=8, algo__learning_starts=12, algo__rollout_steps=2)
    trainer = offpolicy.OffPolicyTrainer(cfg)
    demo_states = trainer.policy.normalizer.count.item()
    gaps = []
    regularizer = offpolicy.calql_regularizer
    monkeypatch.setattr(offpolicy, "calql_regularizer", lambda *args: gaps.append(1) or regularizer(*args))
    trainer.pretrain(RunLogger(str(tmp_path)))
    assert len(gaps) == 3 and trainer.counters["pretrain_steps"] == 3
    acted = []
    rsample = trainer.policy.rsample
    monkeypatch.setattr(trainer.policy, "rsample", lambda obs: acted.append(len(obs["state"])) or rsample(obs))
    trainer._collect_and_learn()  # 2 steps of 4 envs: inside the 12 env-step warm-up
    assert acted == [4, 4] and "updates" not in trainer.counters  # the pre-trained policy acts, nothing is updated
    assert trainer.policy.normalizer.count.item() == demo_states  # its input statistics stay the demonstrations'
    monkeypatch.setattr(offpolicy, "sample_mixture", lambda *args: (_ for _ in ()).throw(AssertionError("mixed")))
    trainer._collect_and_learn()  # the warm-up ends: online updates from the online buffer alone
    assert trainer.counters["updates"] > 0 and len(gaps) == 3  # no conservative term online


@pytest.mark.parametrize("floor", [True, False])
def test_pretraining_targets_are_floored_at_the_demonstrations_returns_to_go(tmp_path, monkeypatch, floor):
    import embodied.runner.offpolicy as offpolicy
    from embodied.runner.logger import RunLogger
    from tests.test_training import config

    cfg = config(tmp_path, algo__name="wsrl", policy__name="tanh_mlp", env__num_envs=4, algo__demo_episodes=4,
                 algo__pretrain_steps=1, algo__batch_size=8, algo__pretrain_return_floor=floor)
    trainer = offpolicy.OffPolicyTrainer(cfg)
    targets = []
    critic_loss = offpolicy.sac.critic_loss
    monkeypatch.setattr(offpolicy.sac, "critic_target", lambda *args: torch.full((8,), -100.0))  # TD far below
    monkeypatch.setattr(offpolicy.sac, "critic_loss",
                        lambda q, target: targets.append(target) or critic_loss(q, target))
    trainer.pretrain(RunLogger(str(tmp_path)))
    returns = set(trainer.demos.returns_to_go().flatten().tolist())
    if floor:  # Reach's dense reward is positive: every target is the sampled step's return-to-go
        assert all(value in returns and value > 0 for value in targets[0].tolist())
    else:
        assert targets[0].tolist() == [-100.0] * 8


def test_anchor_weight_falls_linearly_to_zero_over_its_steps_after_learning_starts():
    assert sac.anchor_weight(2.0, 100, 1000, 1000) == 2.0
    assert sac.anchor_weight(2.0, 100, 1050, 1000) == 1.0
    assert sac.anchor_weight(2.0, 100, 1100, 1000) == 0.0
    assert sac.anchor_weight(2.0, 100, 5000, 1000) == 0.0


def test_wsrl_online_actor_is_pulled_towards_the_frozen_pretrained_actor_which_a_checkpoint_keeps(tmp_path):
    import dataclasses

    import embodied.runner.offpolicy as offpolicy
    from embodied.runner.logger import RunLogger
    from tests.test_training import config

    def drift(coef: float, folder: str):
        """How far (mean squared action) the actor moves from the pre-trained one in 64 online updates, after
        every actor weight was nudged away from it. The entropy settings are those under which a free actor drifts
        fast (WSRL's before 2026-12-06: discount 0.99, temperature from 0.1, entropy target -2|A|)."""
        cfg = config(tmp_path / folder, algo__name="wsrl", policy__name="tanh_mlp", env__num_envs=4,
                     algo__demo_episodes=4, algo__pretrain_steps=200, algo__batch_size=16, algo__learning_starts=8,
                     algo__rollout_steps=18, algo__pretrained_anchor_coef=coef, algo__pretrained_anchor_steps=1000,
                     algo__gamma=0.99, algo__init_temperature=0.1, algo__target_entropy_scale=2.0)
        trainer = offpolicy.OffPolicyTrainer(cfg)
        trainer.pretrain(RunLogger(str(tmp_path / folder)))
        pretrained = {k: v.clone() for k, v in trainer.policy.state_dict().items()}
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in trainer.policy.actor.parameters():
                p.add_(0.01 * torch.randn(p.shape, generator=generator))
        stats, _ = trainer._collect_and_learn()  # 2 warm-up steps, then 16 steps of 4 envs: 64 updates
        states = trainer._stored_observations(trainer.demos)
        reference = trainer._frozen_copy()
        reference.load_state_dict(pretrained)
        with torch.no_grad():
            gap = (trainer.policy.deterministic_action(states) - reference.deterministic_action(states)).pow(2).mean()
        return trainer, stats, gap.item(), pretrained

    free, free_stats, free_gap, _ = drift(0.0, "free")
    anchored, stats, anchored_gap, pretrained = drift(5.0, "anchored")
    assert free.anchor_actor is None and "anchor_loss" not in free_stats
    assert all(torch.equal(anchored.anchor_actor.state_dict()[k], pretrained[k]) for k in pretrained)  # still frozen
    assert 0 < stats["anchor_weight"] < 5.0  # fading: 5 x (1 - (env-steps - 8) / 1000), averaged over the updates
    assert anchored_gap < 0.5 * free_gap, (anchored_gap, free_gap)
    anchored.save_checkpoint()
    resumed = offpolicy.OffPolicyTrainer(dataclasses.replace(anchored.cfg, resume=True))
    assert all(torch.equal(resumed.anchor_actor.state_dict()[k], pretrained[k]) for k in pretrained)

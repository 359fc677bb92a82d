"""Collectors: truncation bootstrapping, GRPO dynamic sampling with refill, eval independent of num_envs."""

from types import SimpleNamespace

import torch

from embodied.rollout.evaluate import evaluate
from embodied.rollout.group_collector import GroupCollector
from embodied.rollout.step_collector import StepCollector
from policies import make_policy
from tests.fake_env import ScriptedOutcomeEnv


class ConstantValuePolicy(torch.nn.Module):
    """Zero actions, log-prob 0, value 2.0 everywhere."""

    chunk_size = 1
    device = torch.device("cpu")  # where the collector keeps its bookkeeping

    def act(self, obs):
        n = obs["state"].shape[0]
        return torch.zeros(n, 1, 1), torch.zeros(n, 1, 1), torch.full((n,), 2.0)

    def value(self, obs):
        return torch.full((obs["state"].shape[0],), 2.0)

    def cache_features(self, obs):
        return obs


def test_truncation_is_bootstrapped_with_the_final_observation_value():
    env = ScriptedOutcomeEnv(num_envs=2, max_episode_steps=2, reward=0.0)
    cfg = SimpleNamespace(rollout_steps=4, gamma=0.5, gae_lambda=1.0, advantage="gae")
    collector = StepCollector(env, ConstantValuePolicy(), cfg)
    collector.start(seed=0)  # reset ids 0 (all succeed: reward 1) and 1 (all fail: reward 0)
    batch, metrics = collector.collect()
    rewards_env1 = batch["returns"].view(4, 2)[:, 1]
    # env 1 (reset id 1 fails): reward 0, truncated at steps 1 and 3, so the collector's reward there is
    # 0 + gamma * V(final obs) = 1.0, and GAE (lambda = 1) gives returns 1.0 at step 1 and
    # 0 + gamma * 1.0 = 0.5 at step 0: the value of the *next* episode never leaks in.
    adv1 = 1.0 - 2.0
    adv0 = (0.0 + 0.5 * 2.0 - 2.0) + 0.5 * adv1
    assert torch.allclose(rewards_env1[1], torch.tensor(adv1 + 2.0))
    assert torch.allclose(rewards_env1[0], torch.tensor(adv0 + 2.0))
    assert metrics["episodes"] == 4
    # reported returns are the env's own rewards, never the bootstrapped targets: reset ids 0, 1 then 2, 3
    # give episodes of return 2 (succeeds twice), 0, 2 (id 2, even env) and 2 (id 3 = kind 0)
    assert metrics["episode_return"] == 1.5


def collect_groups(**cfg):
    """One GRPO collection on the scripted-outcome env (6 envs = 3 groups of 2 per round)."""
    env = ScriptedOutcomeEnv(num_envs=6, max_episode_steps=2, autoreset=False)
    policy = make_policy("mlp", obs_dim=2, action_dim=1, hidden=[8])
    collector = GroupCollector(env, policy, SimpleNamespace(group_size=2, advantage="grpo", **cfg))
    collector.start(seed=0)
    return collector.collect()


def test_grpo_dynamic_sampling_drops_uninformative_groups_and_refills():
    batch, metrics = collect_groups(groups_per_batch=2, dynamic_sampling=True, max_sampling_rounds=5)
    # Each round has 3 groups with reset ids k, k+1, k+2: only the k % 3 == 2 group is informative.
    assert metrics["kept_groups"] == 2 and metrics["sampling_rounds"] == 2 and metrics["dropped_groups"] == 4
    assert batch["action"].shape[0] == 2 * 2 * 2  # 2 groups x 2 envs x 2 steps
    # rows: per kept group, step-major (step 0: member 0, member 1; step 1: ...). In the informative kind the even
    # env (member 0) succeeds at both steps (return 2), the odd one fails (return 0): advantages +1 and -1
    assert torch.equal(batch["obs"]["privileged"].flatten(), torch.full((8,), 2.0))  # only kind-2 groups kept
    assert torch.equal(batch["obs"]["state"].flatten(), torch.tensor([0.0, 0, 1, 1, 0, 0, 1, 1]))
    torch.testing.assert_close(batch["advantages"], torch.tensor([1.0, -1, 1, -1, 1, -1, 1, -1]), atol=1e-4, rtol=0)


def test_grpo_without_dynamic_sampling_keeps_every_group():
    _, metrics = collect_groups(groups_per_batch=3, dynamic_sampling=False, max_sampling_rounds=5)
    assert metrics["kept_groups"] == 3 and metrics["sampling_rounds"] == 1


def test_grpo_refill_stops_at_the_round_cap():
    _, metrics = collect_groups(groups_per_batch=10, dynamic_sampling=True, max_sampling_rounds=3)
    assert metrics["sampling_rounds"] == 3 and metrics["kept_groups"] == 3


def test_evaluation_does_not_depend_on_num_envs():
    from sims import make_env

    torch.manual_seed(0)
    policy = make_policy("mlp", obs_dim=25, action_dim=4, hidden=[32])
    results = []
    for n in (5, 16):
        env = make_env(task="Reach", num_envs=n, autoreset=False)
        results.append(evaluate(policy, env, num_episodes=16, seed=3)[0])
    assert results[0] == results[1]


class HalfActionPolicy(torch.nn.Module):
    """Reparameterised samples that are always 0.5 (log-prob 0); caches the state only."""

    device = torch.device("cpu")

    def rsample(self, obs):
        n = obs["state"].shape[0]
        return torch.full((n, 1, 1), 0.5), torch.zeros(n)

    def cache_features(self, obs):
        return {"state": obs["state"]}


def test_transition_collector_keeps_final_observations_and_its_share_of_the_random_phase():
    from embodied.algorithms.sac import SACConfig
    from embodied.rollout.transition_collector import TransitionCollector

    algo = TransitionCollector.share(SACConfig(rollout_steps=4, learning_starts=5), workers=2)
    assert algo.learning_starts == 3  # ceil(5 / 2): the run's 5 random env-steps split over two workers
    parts = []
    for seed in (0, 1):
        collector = TransitionCollector(ScriptedOutcomeEnv(num_envs=2, max_episode_steps=2), HalfActionPolicy(), algo)
        collector.start(seed)
        batch, metrics = collector.collect()
        assert metrics["env_steps"] == 8 and metrics["episodes"] == 4
        parts.append(batch)
    batch = TransitionCollector.merge(parts)
    assert batch["action"].shape == (4, 4, 1) and batch["obs"]["state"].shape == (4, 4, 1)
    actions = batch["action"][..., 0]
    assert (actions[2:] == 0.5).all()  # env-steps 4 and 6 of each worker: past its 3 random ones, the policy acts
    assert (actions[:2] != 0.5).all() and actions[:2].abs().max() <= 1  # env-steps 0 and 2: uniform random
    assert torch.equal(batch["obs"]["state"][:, 0, 0], torch.tensor([0.0, 1.0, 0.0, 1.0]))  # auto-reset after 2
    assert torch.equal(batch["truncated"][:, 0], torch.tensor([False, True, False, True]))
    assert not batch["terminated"].any()
    # where an episode ended, the final observation (2 steps elapsed), not the next episode's first (0)
    assert torch.equal(batch["final_obs"]["state"][[1, 3], :, 0], torch.full((2, 4), 2.0))

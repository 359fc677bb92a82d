"""The VLA's asymmetric critic (policy.critic=privileged): values from proprioception and the task state alone, and
init_from an SFT policy whose value head reads the backbone keeps every other weight."""

import pytest
import torch

from embodied.runner.trainer import load_initial_weights
from tests.test_vla import observation, tiny_vla

PRIVILEGED_DIM = 6


def with_task_state(obs: dict, seed: int = 1) -> dict:
    return obs | {"privileged": torch.randn(len(obs["state"]), PRIVILEGED_DIM,
                                            generator=torch.Generator().manual_seed(seed))}


def test_privileged_values_follow_the_task_state_and_ignore_the_images():
    policy = tiny_vla("gaussian", privileged_dim=PRIVILEGED_DIM, critic="privileged")
    obs = with_task_state(observation())
    other_images = obs | {"rgb": observation(seed=5)["rgb"]}
    other_task_state = with_task_state(observation(), seed=2)
    values = policy.value(obs)
    assert torch.equal(values, policy.value(other_images))
    assert not torch.allclose(values, policy.value(other_task_state))
    _, _, acted = policy.act(obs)
    assert torch.equal(acted, values)  # the rollout's values are the ones the update re-evaluates
    critic = {id(p) for p in policy.critic_parameters()}
    backbone = [p for p in policy.parameters() if id(p) not in critic]
    policy.value(obs).sum().backward()
    assert all(p.grad is None for p in backbone)  # no value gradient reaches the pixel backbone


def test_privileged_critic_refuses_observations_without_a_task_state():
    policy = tiny_vla("gaussian", privileged_dim=PRIVILEGED_DIM, critic="privileged")
    with pytest.raises(ValueError, match="use policy.critic=backbone where there is no simulator"):
        policy.value(observation())


def test_init_from_a_backbone_critic_policy_copies_all_but_the_value_head(tmp_path):
    saved = tiny_vla("gaussian", privileged_dim=PRIVILEGED_DIM)
    with torch.no_grad():
        for p in saved.parameters():
            p.add_(0.5)  # differ from a fresh policy everywhere
    saved.save_pretrained(str(tmp_path))
    policy = tiny_vla("gaussian", privileged_dim=PRIVILEGED_DIM, critic="privileged")
    fresh_critic = {k: v.clone() for k, v in policy.state_dict().items() if k.startswith("value_head.")}
    load_initial_weights(policy, str(tmp_path))
    loaded, source = policy.state_dict(), saved.state_dict()
    assert all(torch.equal(loaded[k], source[k]) for k in source if not k.startswith("value_head."))
    assert all(torch.equal(loaded[k], v) for k, v in fresh_critic.items())


def test_the_critic_option_is_checked_before_anything_runs(tmp_path):
    from embodied.config.schema import validate
    from tests.test_training import config

    with pytest.raises(ValueError, match="policy.critic must be backbone or privileged, got 'state'"):
        validate(config(tmp_path, policy__name="vla", policy__critic="state"))
    with pytest.raises(ValueError, match="policy.critic=privileged is an option of policy=vla"):
        validate(config(tmp_path, policy__critic="privileged"))


def test_task_state_statistics_leave_entries_without_spread_unscaled():
    from policies.vla.critic import PrivilegedCritic

    critic = PrivilegedCritic(state_dim=2, privileged_dim=3)
    critic.fit_task_state(torch.tensor([[0.0, 0.02, 1.0], [0.0, 0.04, 3.0]]))  # a flag, a cube height, a position
    assert torch.allclose(critic.task_state_mean, torch.tensor([0.0, 0.03, 2.0]))
    assert torch.allclose(critic.task_state_std, torch.tensor([1.0, 0.01, 1.0]))  # population std; 0 -> 1
    critic.fit_task_state(torch.tensor([[0.5, 0.1, 2.0]]))  # one env: no NaN
    assert torch.equal(critic.task_state_std, torch.ones(3))


def test_a_saved_privileged_critic_loads_with_its_statistics(tmp_path):
    from policies import from_pretrained

    policy = tiny_vla("gaussian", privileged_dim=PRIVILEGED_DIM, critic="privileged")
    policy.value_head.fit_task_state(torch.randn(8, PRIVILEGED_DIM) * 3 + 1)
    policy.save_pretrained(str(tmp_path))
    loaded = from_pretrained(str(tmp_path))
    obs = with_task_state(observation())
    assert loaded.critic_input == "privileged" and torch.equal(loaded.value(obs), policy.value(obs))

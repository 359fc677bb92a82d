"""Envs on another device are bridged to the learner's device; envs already there are used as they are."""

import torch

from embodied.rollout.device_bridge import DeviceBridge, for_learner, to_device
from sims import make_env


class FakeGpuEnv:
    """Says its tensors are on another device (meta, which every torch build has); records what reaches it."""

    device = torch.device("meta")
    num_envs = 2

    def __init__(self):
        self.calls = []

    def reset(self, seed=None, reset_ids=None):
        self.calls.append(("reset", seed, reset_ids))
        return {"state": torch.ones(2, 3)}, {"reset_ids": torch.zeros(2, dtype=torch.long)}

    def step(self, action):
        self.calls.append(("step", action))
        obs = {"state": torch.ones(2, 3), "instruction": ["a", "b"], "rgb": {"front": torch.zeros(2, 4, 4, 3)}}
        return obs, torch.zeros(2), torch.zeros(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool), {
            "final_obs": {"state": torch.ones(2, 3)}, "success": torch.zeros(2, dtype=torch.bool)}


def test_an_env_on_another_device_is_bridged_and_keeps_its_attributes():
    fake = FakeGpuEnv()
    env = for_learner(fake, torch.device("cpu"))
    assert isinstance(env, DeviceBridge) and env.num_envs == 2
    obs, reward, term, trunc, info = env.step(torch.zeros(2, 3))
    assert obs["instruction"] == ["a", "b"]
    for tensor in (obs["state"], obs["rgb"]["front"], reward, trunc, info["final_obs"]["state"]):
        assert tensor.device.type == "cpu"
    (_, action), = fake.calls
    assert action.device.type == "meta" and action.shape == (2, 3)  # the action went to the env's device


def test_reset_ids_go_to_the_envs_device_and_the_observation_comes_back():
    fake = FakeGpuEnv()
    env = for_learner(fake, torch.device("cpu"))
    obs, info = env.reset(seed=3, reset_ids=torch.arange(2))
    (_, seed, ids), = fake.calls
    assert seed == 3 and ids.device.type == "meta"
    assert obs["state"].device.type == "cpu" and info["reset_ids"].device.type == "cpu"


def test_an_env_already_on_the_learners_device_is_not_wrapped():
    env = make_env("mujoco", task="Reach", num_envs=1)
    assert for_learner(env, torch.device("cpu")) is env


def test_to_device_moves_nested_tensors_and_keeps_other_leaves():
    tree = ({"a": torch.ones(1), "b": [1, 2]}, 3)
    moved = to_device(tree, torch.device("cpu"))
    assert moved[1] == 3 and moved[0]["b"] == [1, 2] and torch.equal(moved[0]["a"], torch.ones(1))

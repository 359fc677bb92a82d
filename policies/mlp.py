"""Gaussian MLP actor-critic on state observations (proprioception plus task state)."""

from __future__ import annotations

import math

import torch
from torch import nn

from policies.base import Policy, register_policy
from policies.normalizer import RunningNormalizer, normalizer_from_stats


def mlp(sizes: list[int], out_gain: float) -> nn.Sequential:
    """Tanh MLP with orthogonal init; ``out_gain`` scales the last layer (0: it starts at exactly zero)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        nn.init.orthogonal_(linear.weight, out_gain if last else math.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def state_obs_dim(keys: list[str], observation_spec) -> int:
    """Width of the concatenated state observations ``keys`` (``state`` and/or ``privileged``)."""
    dims = {"state": observation_spec.state_dim, "privileged": observation_spec.privileged_dim}
    unknown = [k for k in keys if k not in dims]
    if unknown:
        raise ValueError(f"policy.obs_keys {unknown} are not state observations; use state and/or privileged")
    return sum(dims[k] for k in keys)


def state_vector(obs: dict, keys: list[str]) -> torch.Tensor:
    """The state observations ``keys`` side by side, float [N, sum of their dims]."""
    return torch.cat([obs[k].float() for k in keys], dim=-1)


@register_policy("mlp")
class MLPPolicy(Policy):
    """Actor and critic MLPs over the concatenation of ``obs_keys``; state-independent log-std."""

    def __init__(self, config: dict):
        super().__init__(config)
        obs_dim = int(config["obs_dim"])
        action_dim = int(config["action_dim"])
        hidden = list(config.get("hidden", [256, 256]))
        self.obs_keys = list(config.get("obs_keys", ["state", "privileged"]))
        self.chunk_size = int(config.get("chunk_size", 1))
        self.action_dim = action_dim
        self.normalizer = RunningNormalizer(obs_dim)
        self.actor = mlp([obs_dim, *hidden, action_dim * self.chunk_size], out_gain=0.01)
        self.critic = mlp([obs_dim, *hidden, 1], out_gain=1.0)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(config.get("init_log_std", -1.0))))

    @classmethod
    def for_env(cls, config, observation_spec, action_spec, sample_obs):
        keys = list(config.get("obs_keys", ["state", "privileged"]))
        mlp_keys = ("hidden", "obs_keys", "chunk_size", "init_log_std", "n_action_steps")
        return cls({k: config[k] for k in mlp_keys if k in config} | {
            "obs_dim": state_obs_dim(keys, observation_spec), "action_dim": action_spec.dim})

    @property
    def feature_dim(self) -> int:
        """Width of ``features`` (what off-policy critics read beside the action)."""
        return int(self.config["obs_dim"])

    def features(self, obs: dict) -> torch.Tensor:
        """Normalised flat observation [N, obs_dim]."""
        return self.normalizer(state_vector(obs, self.obs_keys))

    def _distribution(self, x: torch.Tensor) -> torch.distributions.Normal:
        mean = self.actor(x).view(x.shape[0], self.chunk_size, self.action_dim)  # [N, T, A]
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean))

    def act(self, obs):
        x = self.features(obs)
        dist = self._distribution(x)
        action = dist.sample()
        return action, dist.log_prob(action), self.critic(x).squeeze(-1)

    def evaluate(self, obs, action):
        x = self.features(obs)
        dist = self._distribution(x)
        return dist.log_prob(action), dist.entropy(), self.critic(x).squeeze(-1)

    def value(self, obs):
        return self.critic(self.features(obs)).squeeze(-1)

    def critic_parameters(self):
        return list(self.critic.parameters())

    def cache_features(self, obs: dict) -> dict:
        """Only the observations this policy reads go into rollouts (no instruction lists to index per minibatch)."""
        return {key: obs[key] for key in self.obs_keys}

    def deterministic_action(self, obs):
        return self._distribution(self.features(obs)).mean

    def observation_inputs(self) -> list[str]:
        """The state vectors of ``obs_keys``."""
        return list(self.obs_keys)

    def set_dataset_stats(self, stats: dict) -> None:
        """Normaliser mean/variance from the dataset's observation.state / observation.environment_state."""
        normalizer_from_stats(self.normalizer, stats, self.obs_keys)

    def update_normalizer(self, obs: dict) -> None:
        """Fold observed states into the running statistics (call on rollouts, not on update batches)."""
        self.normalizer.update(state_vector(obs, self.obs_keys))

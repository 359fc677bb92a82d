"""Tanh-squashed Gaussian MLP actor on state observations: the actor of off-policy RL (SAC, RLPD).

Actions are ``tanh(u)`` with ``u ~ Normal(mean(s), std(s))``, so they stay inside the env's [-1, 1] box and the
entropy bonus cannot grow the noise past the bounds. The log-std is an output of the network (state dependent),
squashed into [LOG_STD_MIN, LOG_STD_MAX] as in CleanRL's SAC. ``rsample`` draws reparameterised actions whose
log-probability carries the change of variables: ``log p(a) = log N(u) - sum log(1 - tanh(u)^2)``.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from policies.base import register_policy
from policies.mlp import MLPPolicy, mlp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
EPS = 1e-6  # keeps atanh finite where an action is +-1


def refuse_other_action_box(name: str, action_spec) -> None:
    """ValueError unless the env's actions span [-1, 1], tanh's range (``name``: the policy, for the message)."""
    if (action_spec.low, action_spec.high) != (-1.0, 1.0):
        raise ValueError(f"policy={name} acts in [-1, 1] but this env's actions span [{action_spec.low}, "
                         f"{action_spec.high}]: use an env with normalised actions")


def gaussian_of(output: torch.Tensor) -> torch.distributions.Normal:
    """An actor's output [N, 2A] (means, then raw log-stds squashed into [LOG_STD_MIN, LOG_STD_MAX]) as the Gaussian of
    the pre-squash action u, [N, 1, A]."""
    mean, raw = output.chunk(2, dim=-1)  # [N, A] each
    log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(raw) + 1)
    return torch.distributions.Normal(mean[:, None], log_std.exp()[:, None])


def squashed_log_prob(dist: torch.distributions.Normal, u: torch.Tensor) -> torch.Tensor:
    """Per-dimension log-density [N, 1, A] of ``tanh(u)``: the Gaussian's minus ``log(1 - tanh(u)^2)``, written as
    ``2 (log 2 - u - softplus(-2u))`` so that it stays exact where tanh(u) rounds to +-1."""
    return dist.log_prob(u) - 2 * (math.log(2) - u - F.softplus(-2 * u))


@register_policy("tanh_mlp")
class TanhGaussianMLPPolicy(MLPPolicy):
    """MLP actor with a tanh-squashed, state-dependent Gaussian (``policy=tanh_mlp``); the critic MLP stays for
    interface completeness (``value``), off-policy algorithms train Q functions of their own."""

    reparameterized = True

    def __init__(self, config: dict):
        super().__init__(config)
        if self.chunk_size != 1:
            raise ValueError(f"policy=tanh_mlp predicts one action per step; got policy.chunk_size={self.chunk_size}")
        hidden = list(config.get("hidden", [256, 256]))
        self.actor = mlp([int(config["obs_dim"]), *hidden, 2 * self.action_dim], out_gain=0.01)
        del self.log_std  # the log-std is the actor's second half of outputs

    @classmethod
    def for_env(cls, config, observation_spec, action_spec, sample_obs):
        """Refuses an env whose action box is not [-1, 1]: tanh's range is the whole action space."""
        refuse_other_action_box("tanh_mlp", action_spec)
        return super().for_env(config, observation_spec, action_spec, sample_obs)

    def _distribution(self, x: torch.Tensor) -> torch.distributions.Normal:
        return gaussian_of(self.actor(x))

    def actor_features(self, obs: dict) -> torch.Tensor:
        """What the actor reads: ``features`` here; a policy whose encoder the critics train detaches it."""
        return self.features(obs)

    def rsample(self, obs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action [N, 1, A] and its log-probability summed over dimensions [N]."""
        dist = self._distribution(self.actor_features(obs))
        u = dist.rsample()
        return torch.tanh(u), squashed_log_prob(dist, u).sum(dim=(1, 2))

    def act(self, obs):
        """A sampled action [N, 1, A] in (-1, 1), its per-dimension log-prob and the (unused by SAC) value."""
        x = self.actor_features(obs)
        dist = self._distribution(x)
        u = dist.sample()
        return torch.tanh(u), squashed_log_prob(dist, u), self.critic(x).squeeze(-1)

    def evaluate(self, obs, action):
        """Log-prob of ``action`` (inverted through atanh) and, as entropy, the pre-squash Gaussian's."""
        x = self.actor_features(obs)
        dist = self._distribution(x)
        u = torch.atanh(action.clamp(-1 + EPS, 1 - EPS))
        return squashed_log_prob(dist, u), dist.entropy(), self.critic(x).squeeze(-1)

    def deterministic_action(self, obs):
        """``tanh`` of the Gaussian's mean, [N, 1, A]."""
        return torch.tanh(self._distribution(self.actor_features(obs)).mean)

"""Residual correction for off-policy RL over any frozen base, chunked VLAs included (``policy=residual_tanh``).

    a_t = a_base,t + residual_scale * tanh(u_t),   u_t ~ N(mu(s_t, a_base,t), sigma(s_t, a_base,t))

How Q is defined for a base that predicts action chunks: the base's chunk is executed open loop, one action per
step, and that step's base action is part of the state the critics and the correction read; Q scores the one action
executed this step, ``Q([s_t, a_base,t], a_t)``. The alternative, Q over whole chunks, would need the chunk's
intermediate rewards and states folded into one transition and a critic over T x A inputs, and it could only correct
the chunk where the base replans; a per-step Q corrects every step, keeps SAC's one-step Bellman target (n-step
returns remain available) and lets the replay buffer store the small state the correction reads plus one base action
per step, never the base's camera images (as ResiP and residual off-policy fine-tuning of chunked BC policies do).

The correction's last layer starts at zero, so at step 0 the deterministic action is the base's exactly; the
log-std is an output squashed as in ``policies/tanh_mlp.py``. Log-probabilities are those of the correction
``tanh(u)`` in its own [-1, 1] units (the density of ``a`` differs by the constant ``-A log(residual_scale)``), so
SAC's entropy target means what it means for ``tanh_mlp`` whatever the scale (in ``a``'s units a scale of 0.1 would put
-|A| out of reach). The executed action can leave [-1, 1] where the base is near a bound; the env clips it. Only the
correction trains; the base rides in the checkpoint.
"""

from __future__ import annotations

import torch

from policies.base import register_policy
from policies.mlp import mlp
from policies.residual import ResidualPolicy
from policies.tanh_mlp import EPS, gaussian_of, squashed_log_prob


@register_policy("residual_tanh")
class ResidualTanhPolicy(ResidualPolicy):
    """A frozen ``base`` and a tanh-squashed Gaussian correction with reparameterised samples (algo=sac|rlpd|wsrl)."""

    reparameterized = True

    def __init__(self, config: dict):
        super().__init__(config)
        hidden = list(config.get("hidden", [256, 256]))
        inputs = int(config["obs_dim"]) + self.action_dim
        self.actor = mlp([inputs, *hidden, 2 * self.action_dim], out_gain=0.0)  # mean | log-std; zero at step 0
        del self.log_std  # the log-std is the actor's second half of outputs

    @property
    def feature_dim(self) -> int:
        """Width of ``features``: the correction's observation and the base action."""
        return int(self.config["obs_dim"]) + self.action_dim

    def features(self, obs: dict) -> torch.Tensor:
        """``[normalised obs_keys | this step's base action]`` [N, feature_dim]: what the critics score actions in."""
        return self._inputs(obs, self.base_action(obs))

    def cache_features(self, obs: dict) -> dict:
        """What the replay buffer stores: the correction's ``obs_keys`` and this step's base action (no images)."""
        return {key: obs[key] for key in self.obs_keys} | {"base_action": self.base_action(obs)}

    def _squashed(self, obs: dict) -> tuple[torch.Tensor, torch.distributions.Normal]:
        """The base action [N, 1, A] and the Gaussian of ``u`` [N, 1, A]."""
        base = self.base_action(obs)  # [N, A]
        return base[:, None], gaussian_of(self.actor(self._inputs(obs, base)))

    def rsample(self, obs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised combined action [N, 1, A] and its log-probability summed over dimensions [N]."""
        base, dist = self._squashed(obs)
        u = dist.rsample()
        return base + self.action_scale * torch.tanh(u), squashed_log_prob(dist, u).sum(dim=(1, 2))

    def act(self, obs):
        """A sampled combined action [N, 1, A], its per-dimension log-prob and the (unused by SAC) value."""
        base, dist = self._squashed(obs)
        u = dist.sample()
        value = self.critic(self._inputs(obs, base[:, 0])).squeeze(-1)
        return base + self.action_scale * torch.tanh(u), squashed_log_prob(dist, u), value

    def evaluate(self, obs, action):
        """Log-prob of a combined ``action`` (its correction inverted through atanh) and the pre-squash entropy."""
        base, dist = self._squashed(obs)
        u = torch.atanh(((action - base) / self.action_scale).clamp(-1 + EPS, 1 - EPS))
        value = self.critic(self._inputs(obs, base[:, 0])).squeeze(-1)
        return squashed_log_prob(dist, u), dist.entropy(), value

    def deterministic_action(self, obs):
        """The base action plus ``scale x tanh`` of the correction's mean, [N, 1, A]."""
        base, dist = self._squashed(obs)
        return base + self.action_scale * torch.tanh(dist.mean)

"""Action heads over the fused query tokens: discrete tokens, Gaussian chunk, flow matching.

All heads work in normalised action space [-1, 1]. ``h`` holds the backbone's outputs at the head's query
positions, [N, Q, d] with Q = ``num_queries(chunk, action_dim)``. Log-probabilities and entropies are per
action dimension [N, T, A], as everywhere in the policy interface.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from sims.registry import Registry

HEADS = Registry("action head", package="policies.vla", key="policy.head.name")


def register_head(name: str) -> Callable:
    """Decorator: make an action head selectable by ``policy.head.name``."""
    return HEADS.register(name)


def head_class(config: dict) -> type["ActionHead"]:
    """The head class named ``config['name']`` (clear error listing the registered ones)."""
    return HEADS.lookup(config.get("name"))


class ActionHead(nn.Module):
    """Maps query states to an action distribution over normalised chunks [N, T, A]."""

    def __init__(self, chunk: int, action_dim: int):
        super().__init__()
        self.chunk, self.action_dim = chunk, action_dim

    @staticmethod
    def num_queries(chunk: int, action_dim: int) -> int:
        """Query tokens the backbone must provide."""
        return chunk

    def sample(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A sampled chunk [N, T, A] and its log-prob [N, T, A]."""
        raise NotImplementedError

    def log_prob(self, h: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-prob and entropy [N, T, A] of a normalised chunk."""
        raise NotImplementedError

    def mode(self, h: torch.Tensor) -> torch.Tensor:
        """The most likely chunk [N, T, A]."""
        raise NotImplementedError

    def sft_loss(self, h: torch.Tensor, action: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Imitation loss on a normalised demonstration chunk, valid steps [N, T] only (default: mean negative
        log-likelihood per chunk)."""
        return -(self.log_prob(h, action)[0] * valid[..., None]).sum(dim=(1, 2)).mean()


@register_head("token")
class TokenHead(ActionHead):
    """OpenVLA-style discrete actions: each dimension of each chunk step is one token over ``bins`` uniform bins.

    Logits are computed only for the action vocabulary (a d -> bins projection), one query token per action
    token, decoded in parallel; the chunk's log-prob is the sum over its tokens.
    """

    def __init__(self, config: dict, d_model: int, chunk: int, action_dim: int):
        super().__init__(chunk, action_dim)
        self.bins = int(config.get("bins", 256))
        self.logits = nn.Linear(d_model, self.bins)
        self.register_buffer("centers", torch.linspace(-1.0, 1.0, self.bins), persistent=False)

    @staticmethod
    def num_queries(chunk: int, action_dim: int) -> int:
        return chunk * action_dim

    def _distribution(self, h: torch.Tensor) -> torch.distributions.Categorical:
        logits = self.logits(h).view(h.shape[0], self.chunk, self.action_dim, self.bins)  # [N, T, A, bins]
        return torch.distributions.Categorical(logits=logits)

    def tokens(self, action: torch.Tensor) -> torch.Tensor:
        """Bin index [N, T, A] of each normalised action value (nearest centre)."""
        return torch.round((action.clamp(-1, 1) + 1) / 2 * (self.bins - 1)).long()

    def sample(self, h):
        dist = self._distribution(h)
        tokens = dist.sample()  # [N, T, A]
        return self.centers[tokens], dist.log_prob(tokens)

    def log_prob(self, h, action):
        dist = self._distribution(h)
        return dist.log_prob(self.tokens(action)), dist.entropy()

    def mode(self, h):
        return self.centers[self._distribution(h).probs.argmax(-1)]


class NormalOutputHead(ActionHead):
    """Heads whose chunk is Gaussian around a predicted mean with a learned, state-independent std."""

    def __init__(self, config: dict, chunk: int, action_dim: int):
        super().__init__(chunk, action_dim)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(config.get("init_log_std", -1.0))))

    def chunk_mean(self, h: torch.Tensor) -> torch.Tensor:
        """Mean of the chunk distribution [N, T, A]."""
        raise NotImplementedError

    def _distribution(self, h):
        mean = self.chunk_mean(h)
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean))

    def sample(self, h):
        dist = self._distribution(h)
        action = dist.sample()
        return action, dist.log_prob(action)

    def log_prob(self, h, action):
        dist = self._distribution(h)
        return dist.log_prob(action), dist.entropy()

    def mode(self, h):
        return self.chunk_mean(h)


@register_head("gaussian")
class GaussianChunkHead(NormalOutputHead):
    """OpenVLA-OFT-style continuous chunk decoded in parallel: one query per chunk step -> mean [A]."""

    def __init__(self, config: dict, d_model: int, chunk: int, action_dim: int):
        super().__init__(config, chunk, action_dim)
        self.mean = nn.Linear(d_model, action_dim)
        nn.init.zeros_(self.mean.bias)
        nn.init.normal_(self.mean.weight, std=0.01)

    def chunk_mean(self, h):
        return self.mean(h)  # [N, T, A]


@register_head("flow")
class FlowMatchingHead(NormalOutputHead):
    """pi0/SmolVLA-style flow matching over the chunk, with a stochastic final denoising step for RL.

    Convention: x_1 is noise, x_0 the action; x_tau = tau * noise + (1 - tau) * action and the network
    predicts the velocity u = noise - action. Sampling integrates ``steps`` Euler steps from tau = 1 to 0.
    For RL the chain starts at the noise mode (x_1 = 0) and its last step is a Gaussian with mean the Euler
    update and a learned std: the chunk's log-prob is exact and can be re-evaluated from (obs, action).
    """

    def __init__(self, config: dict, d_model: int, chunk: int, action_dim: int):
        super().__init__(config, chunk, action_dim)
        self.steps = int(config.get("steps", 5))
        hidden = int(config.get("hidden", 128))
        self.time_dim = 16
        self.velocity = nn.Sequential(nn.Linear(d_model + action_dim + self.time_dim, hidden), nn.SiLU(),
                                      nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, action_dim))

    def _time_features(self, tau: torch.Tensor) -> torch.Tensor:
        """Sinusoidal embedding of tau [N, T, 1] -> [N, T, time_dim]."""
        freqs = torch.exp(torch.arange(self.time_dim // 2, device=tau.device) * (-math.log(100.0) / 8))
        angles = tau * freqs * 2 * math.pi
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def predict_velocity(self, h: torch.Tensor, x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """Velocity [N, T, A] at noisy chunk x [N, T, A], time tau [N, T, 1], context h [N, T, d]."""
        return self.velocity(torch.cat([h, x, self._time_features(tau)], dim=-1))

    def chunk_mean(self, h: torch.Tensor) -> torch.Tensor:
        """Deterministic Euler chain from the noise mode; the mean of the last (stochastic) step [N, T, A]."""
        x = torch.zeros(h.shape[0], self.chunk, self.action_dim, device=h.device, dtype=h.dtype)
        dt = 1.0 / self.steps
        for k in range(self.steps):
            tau = torch.full((*x.shape[:2], 1), 1.0 - k * dt, device=h.device, dtype=h.dtype)
            x = x - dt * self.predict_velocity(h, x, tau)
        return x

    def sft_loss(self, h, action, valid):
        """Conditional flow matching: || v(x_tau, tau) - (noise - action) ||^2 at a random tau per chunk."""
        noise = torch.randn_like(action)  # [N, T, A]
        tau = torch.rand(action.shape[0], 1, 1, device=action.device).expand(-1, self.chunk, 1)  # [N, T, 1]
        x_tau = tau * noise + (1 - tau) * action
        error = (self.predict_velocity(h, x_tau, tau) - (noise - action)).pow(2).mean(-1)  # [N, T]
        return (error * valid).sum() / valid.sum().clamp(min=1)

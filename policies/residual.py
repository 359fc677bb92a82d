"""Residual policy (ResiP style): a frozen base policy plus a learned per-step correction.

    a_t = a_base,t + action_scale * r_t,   r_t ~ N(mu(obs_t, a_base,t), sigma)       (normalised action space)

The base may be any saved policy (a small BC policy, a VLA with any head) and may predict action chunks: its
chunk is computed once every ``base.actions_per_inference`` steps of an episode (phase from ``obs["elapsed"]``) and the
current step's action is cached in the rollout (``obs["base_action"]``), so PPO epochs never re-run the base.
The correction acts every step (chunk size 1). Its actor's last layer starts at zero, so at step 0 the
combined policy's deterministic action is the base's exactly. Only the correction's actor, critic, log-std and
observation normaliser train; the base's weights are saved inside the residual's own checkpoint. A BC warm
start is ``algo=sft policy=residual base=...`` on demonstrations (the correction learns demo - base), followed
by PPO with ``init_from=<that run>/final_policy``.
"""

from __future__ import annotations

import torch
from torch import nn

from policies.base import Policy, from_pretrained, make_policy, register_policy
from policies.mlp import mlp, state_obs_dim, state_vector
from policies.normalizer import RunningNormalizer, normalizer_from_stats

@register_policy("residual")
class ResidualPolicy(Policy):
    """A frozen ``base`` and a Gaussian correction over [normalised observation, base action]."""

    def __init__(self, config: dict):
        super().__init__(config)
        base_type = config["base_type"]
        self.base = make_policy(base_type, **config["base_config"])
        self.base.requires_grad_(False)
        self.base.eval()
        self.action_scale = float(config.get("residual_scale", 0.1))
        self.obs_keys = list(config.get("obs_keys", ["state", "privileged"]))
        self.action_dim = int(config["action_dim"])
        hidden = list(config.get("hidden", [256, 256]))
        inputs = int(config["obs_dim"]) + self.action_dim
        self.normalizer = RunningNormalizer(int(config["obs_dim"]))
        self.actor = mlp([inputs, *hidden, self.action_dim], out_gain=0.0)  # zero correction at step 0
        self.critic = mlp([inputs, *hidden, 1], out_gain=1.0)
        self.log_std = nn.Parameter(torch.full((self.action_dim,), float(config.get("init_log_std", -1.0))))
        self._base_chunk: torch.Tensor | None = None  # [N, T_base, A], the base chunk being executed

    @classmethod
    def for_env(cls, config, observation_spec, action_spec, sample_obs):
        """Wrap the saved policy at ``config['base']`` (a ``save_pretrained`` directory) for this env."""
        if not config.get("base"):
            raise ValueError("the residual policy needs a base: pass base=<dir written by save_pretrained>, e.g. "
                             "runs/PickCube_sft/final_policy")
        base = from_pretrained(config["base"])
        base_dim = getattr(base, "action_dim", action_spec.dim)
        if base_dim != action_spec.dim:
            raise ValueError(f"base policy {config['base']} acts in {base_dim} dims, this env in {action_spec.dim}: "
                             "train the residual in the base's controller space (env.controller)")
        keys = list(config.get("obs_keys", ["state", "privileged"]))
        policy = cls({"base_type": base.policy_type, "base_config": base.config, "action_dim": action_spec.dim,
                      "obs_dim": state_obs_dim(keys, observation_spec), "obs_keys": keys,
                      "residual_scale": config.get("residual_scale", 0.1),
                      "hidden": config.get("hidden", [256, 256]), "init_log_std": config.get("init_log_std", -1.0)})
        policy.base.load_state_dict(base.state_dict())
        policy.normalizer.update(state_vector(sample_obs, keys))
        return policy

    acts_before_training = True  # the base acts from the first step

    def acting_state(self) -> dict:
        """The base chunk being executed, [N, T_base, A], when there is one."""
        return {} if self._base_chunk is None else {"base_chunk": self._base_chunk.clone()}

    def load_acting_state(self, state: dict) -> None:
        """Continue the base chunk of an ``acting_state`` (or start afresh without one)."""
        self._base_chunk = state.get("base_chunk")

    def train(self, mode: bool = True) -> "ResidualPolicy":
        super().train(mode)
        self.base.eval()  # the base never leaves evaluation mode (dropout off, frozen statistics)
        return self

    # ------------------------------------------------------------------------------------- base actions
    @torch.no_grad()
    def base_action(self, obs: dict) -> torch.Tensor:
        """The base's action for each env's current step [N, A] (cached in ``obs["base_action"]`` when present).

        A fresh base chunk is computed for the envs whose episode step is a multiple of the base's chunk size.
        Without an episode clock (dataset batches for a BC warm start) every sample gets the first action of
        a chunk computed for it.
        """
        if "base_action" in obs:
            return obs["base_action"]
        if "elapsed" not in obs:
            return self.base.deterministic_action(obs).float()[:, 0]
        elapsed = obs["elapsed"].long()  # [N]
        horizon = self.base.actions_per_inference  # the base replans this often
        phase = elapsed % horizon
        n = elapsed.shape[0]
        stale = self._base_chunk is None or self._base_chunk.shape[0] != n
        refresh = torch.ones(n, dtype=torch.bool, device=phase.device) if stale else phase == 0
        if refresh.any():
            chunk = self.base.deterministic_action(obs).float()  # [N, T, A]
            assert chunk.shape == (n, self.base.chunk_size, self.action_dim), chunk.shape
            self._base_chunk = chunk if stale else torch.where(refresh[:, None, None], chunk, self._base_chunk)
        return self._base_chunk[torch.arange(n, device=phase.device), phase]

    def cache_features(self, obs: dict) -> dict:
        """Store this step's base action with the observation (PPO epochs reuse it)."""
        return {**obs, "base_action": self.base_action(obs)}

    def reset(self) -> None:
        """Forget the base chunk and queued actions (episode start)."""
        super().reset()
        self._base_chunk = None

    # ---------------------------------------------------------------------------------- distribution
    def _inputs(self, obs: dict, base: torch.Tensor) -> torch.Tensor:
        x = self.normalizer(state_vector(obs, self.obs_keys))
        return torch.cat([x, base], dim=-1)  # [N, obs_dim + A]

    def _distribution(self, obs: dict) -> tuple[torch.distributions.Normal, torch.Tensor]:
        """Distribution of the combined action [N, 1, A] and the critic's input."""
        base = self.base_action(obs)  # [N, A]
        x = self._inputs(obs, base)
        mean = base + self.action_scale * self.actor(x)  # [N, A]
        std = (self.action_scale * self.log_std.exp()).expand_as(mean)
        return torch.distributions.Normal(mean[:, None], std[:, None]), x

    def act(self, obs):
        dist, x = self._distribution(obs)
        action = dist.sample()  # [N, 1, A]
        return action, dist.log_prob(action), self.critic(x).squeeze(-1)

    def evaluate(self, obs, action):
        dist, x = self._distribution(obs)
        return dist.log_prob(action), dist.entropy(), self.critic(x).squeeze(-1)

    def value(self, obs):
        return self.critic(self._inputs(obs, self.base_action(obs))).squeeze(-1)

    def critic_parameters(self):
        return list(self.critic.parameters())

    def deterministic_action(self, obs):
        return self._distribution(obs)[0].mean

    def observation_inputs(self) -> list[str]:
        """What the frozen base reads, plus the correction's ``obs_keys``."""
        return list(dict.fromkeys([*self.base.observation_inputs(), *self.obs_keys]))

    def set_dataset_stats(self, stats: dict) -> None:
        """BC warm start (``algo=sft policy=residual``): the correction's normaliser from the dataset."""
        normalizer_from_stats(self.normalizer, stats, self.obs_keys)

    def update_normalizer(self, obs: dict) -> None:
        """Fold observed states into the correction's running statistics (the base's stay frozen)."""
        self.normalizer.update(state_vector(obs, self.obs_keys))

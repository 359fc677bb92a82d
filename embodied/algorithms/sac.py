"""SAC (soft actor-critic, Haarnoja et al. 2018) declared in one file: its settings, its three losses, the target
update and its ``Algorithm``. The loop that collects steps into the replay buffer and calls these is
embodied/runner/offpolicy.py.

Q is defined on the executed action: SAC trains policies that predict one action per step (``policy=tanh_mlp``,
``pixel_tanh``; a chunked head is the frozen base of ``residual_tanh``, whose Q scores each step's action). Critics are
an ensemble (``num_critics``): the target takes the minimum over a random subset of ``critic_subset`` target members
(2 of 2: clipped double Q; 2 of 10: RLPD / REDQ).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from embodied.algorithms.config import AlgoConfig
from embodied.algorithms.registry import Algorithm, register_algorithm

ACTOR_Q = {"min": lambda q: q.min(dim=0).values, "mean": lambda q: q.mean(dim=0)}  # how the actor reads [E, B]


@dataclass
class SACConfig(AlgoConfig):
    """SAC's settings (``algo=sac``); ``rollout_steps`` is the env steps of every env between log lines."""

    name: str = "sac"
    collector: str = "transitions"  # what env workers (dist=local|ray) collect: whole steps for the replay buffer
    gamma: float = 0.99
    learning_rate: float = 3e-4  # the actor's
    critic_learning_rate: float = 3e-4  # the critics' and the temperature's
    batch_size: int = 256  # transitions per gradient update
    tau: float = 0.005  # target critics move this fraction towards the critics after every update
    # critic updates per env-step (summed over envs): the update-to-data ratio; the actor and the temperature step after
    # every max(1, round(utd_ratio))-th critic update (with a whole utd_ratio >= 1: once per env-step, as RLPD's code)
    utd_ratio: float = 0.5
    learning_starts: int = 5000  # env-steps of uniform random actions before the first update
    buffer_size: int = 1_000_000  # env-steps kept (all envs together)
    n_step: int = 1  # n-step returns in the critic target
    num_critics: int = 2
    critic_subset: int = 2  # target: the minimum over this many randomly chosen target critics
    critic_hidden: list = field(default_factory=lambda: [256, 256])
    critic_layer_norm: bool = True
    actor_q: str = "min"  # how the actor's loss combines the critics: min | mean (RLPD)
    init_temperature: float = 1.0
    target_entropy: Optional[float] = None  # null: -target_entropy_scale x (action dims)
    target_entropy_scale: float = 1.0
    backup_entropy: bool = True  # the critic target includes -alpha log pi(a'|s') (RLPD turns it off on sparse tasks)
    # demonstrations: this many episodes of the task's scripted expert, collected in simulation before training into
    # a buffer of their own (0 with data.paths: the episodes of those LeRobot datasets, which need next.reward); each
    # batch then takes demo_ratio of its transitions from it (RLPD: 0.5)
    demo_episodes: int = 0
    demo_ratio: float = 0.5
    # behaviour cloning on the batch's demonstration rows, added to the actor's loss with weight bc_coef x mean|Q|
    # (TD3+BC's scale-free weighting); online only where Q rates the demonstrated action above the policy's (Nair et
    # al. 2018's Q filter, so the term fades once the policy does better than the demonstrations), in offline
    # pre-training on every row; 0: off
    bc_coef: float = 0.0
    # offline pre-training before the first env-step: this many gradient steps on the demonstrations alone, the critics
    # with Cal-QL's conservative term (weight cql_alpha, cql_actions sampled actions of each kind; see calql.py).
    # A pre-trained actor then acts from the first env-step (WSRL's warm-up until learning_starts, no random actions)
    # and the observation statistics stay the demonstrations'
    pretrain_steps: int = 0
    cql_alpha: float = 5.0
    cql_actions: int = 4
    # pre-training's TD targets floored at the demonstration's discounted return-to-go (Wilcox et al. 2022, MCAC): Q
    # reaches the demonstrations' value in a few hundred updates instead of one Bellman backup per target-network
    # time constant (1 / tau updates)
    pretrain_return_floor: bool = True
    # online, the actor's deterministic action is also pulled towards the frozen pre-trained actor's (the policy as
    # pre-training or init_from left it) on every batch state, weight pretrained_anchor_coef x mean|Q| fading linearly
    # to 0 over the pretrained_anchor_steps env-steps after learning_starts: the cloned behaviour holds while the
    # critics re-fit to online data, and no data is retained (0: off)
    pretrained_anchor_coef: float = 0.0
    pretrained_anchor_steps: int = 10_000
    # the first this many online updates step the critics alone (the actor and the temperature wait): an actor that
    # starts from a pre-trained policy is not moved by critics that have not yet fitted the data (0: off)
    actor_warmup_updates: int = 0


def critic_target(policy, target_critic, batch: dict, alpha: torch.Tensor, subset: int,
                  generator: torch.Generator | None = None, backup_entropy: bool = True) -> torch.Tensor:
    """Soft n-step target [B]: ``reward + discount * (min_subset Q'(s', a') - alpha * log pi(a'|s'))``, a' ~ pi(s')
    (without the ``- alpha * log pi`` term when ``backup_entropy`` is false).

    batch: next_obs, reward [B] (the n-step return), discount [B] (gamma^n, or 0 after a termination).
    """
    with torch.no_grad():
        next_action, next_logprob = policy.rsample(batch["next_obs"])  # [B, 1, A], [B]
        q_next = target_critic(policy.features(batch["next_obs"]), next_action[:, 0])  # [E, B]
        members = torch.randperm(q_next.shape[0], generator=generator)[:subset]
        soft_value = q_next[members].min(dim=0).values  # [B]
        if backup_entropy:
            soft_value = soft_value - alpha * next_logprob
        return batch["reward"] + batch["discount"] * soft_value


def critic_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over members of each member's mean squared error: ``q`` [E, B] against ``target`` [B]."""
    return (q - target).pow(2).mean(dim=1).sum()


def actor_loss(policy, critic, obs: dict, alpha: torch.Tensor, actor_q: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean(alpha * log pi(a|s) - Q(s, a))`` with a ~ pi(s) reparameterised; returns it and log pi [B]."""
    action, logprob = policy.rsample(obs)  # [B, 1, A], [B]
    q = critic(policy.features(obs).detach(), action[:, 0])  # [E, B]; only the actor is stepped on this loss
    return (alpha * logprob - ACTOR_Q[actor_q](q)).mean(), logprob


def q_filtered_bc_loss(policy, critic, obs: dict, demo_action: torch.Tensor, q_filter: bool = True) -> torch.Tensor:
    """``mean|Q| x mean(filter x ||mode(s) - a_demo||^2)`` over demonstration rows: the policy's deterministic action
    pulled towards the demonstrated one where the critics' mean rates ``a_demo`` above it (``filter`` 1, else 0;
    every row with ``q_filter`` false, as in offline pre-training, where the critics are still being fitted).

    obs: [D, ...] demonstration observations; demo_action [D, A]. Gradients reach the actor only.
    """
    mode = policy.deterministic_action(obs)[:, 0]  # [D, A]
    with torch.no_grad():
        features = policy.features(obs)
        q_demo = critic(features, demo_action).mean(dim=0)  # [D]
        q_mode = critic(features, mode).mean(dim=0)  # [D]
        keep = (q_demo > q_mode).float() if q_filter else torch.ones_like(q_demo)  # [D]
        scale = torch.cat([q_demo, q_mode]).abs().mean()
    return scale * (keep * (mode - demo_action).pow(2).sum(dim=-1)).mean()


def anchor_weight(coef: float, fade_steps: int, env_steps: int, learning_starts: int) -> float:
    """``coef`` at the first online update (``learning_starts`` env-steps), falling linearly to 0 ``fade_steps``
    env-steps later."""
    return coef * max(0.0, 1.0 - (env_steps - learning_starts) / fade_steps)


def temperature_loss(log_alpha: torch.Tensor, logprob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """``-alpha * mean(log pi + target_entropy)``: alpha grows while the entropy is below its target."""
    return -(log_alpha.exp() * (logprob.detach() + target_entropy)).mean()


@torch.no_grad()
def soft_update(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    """``target <- tau * source + (1 - tau) * target``, parameter by parameter."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, tau)


def steps_actor(update: int, utd_ratio: float, actor_warmup_updates: int) -> bool:
    """Whether online update number ``update`` (from 1) also steps the actor and the temperature: every
    round(utd_ratio)-th one (at least every one), none of the first ``actor_warmup_updates``."""
    return update > actor_warmup_updates and update % max(1, round(utd_ratio)) == 0


def has_demonstrations(cfg) -> bool:
    """Whether the run has demonstrations: the scripted expert's (``algo.demo_episodes``) or datasets'
    (``data.paths``)."""
    return cfg.algo.demo_episodes > 0 or bool(cfg.data.paths)


def sac_checks(cfg) -> list[tuple[bool, str]]:
    """Settings SAC can run with, and a policy it can train."""
    from policies.base import POLICIES

    a = cfg.algo
    policy_cls = POLICIES.lookup(cfg.policy.name)
    return [
        (policy_cls.reparameterized, f"algo={a.name} needs a policy with reparameterised bounded samples (policy="
                                     f"tanh_mlp, pixel_tanh, or residual_tanh over a base), not "
                                     f"policy={cfg.policy.name}"),
        (cfg.policy.chunk_size == 1, f"algo={a.name} learns Q of single actions: set policy.chunk_size=1"),
        (a.batch_size >= 1, f"algo.batch_size must be >= 1, got {a.batch_size}"),
        (0 < a.tau <= 1, f"algo.tau must be in (0, 1], got {a.tau}"),
        (a.utd_ratio > 0, f"algo.utd_ratio must be > 0 (gradient updates per env-step), got {a.utd_ratio}"),
        (a.learning_starts >= 0, f"algo.learning_starts must be >= 0, got {a.learning_starts}"),
        (a.n_step >= 1, f"algo.n_step must be >= 1, got {a.n_step}"),
        (a.buffer_size > a.n_step * cfg.env.num_envs,
         f"algo.buffer_size={a.buffer_size} must exceed algo.n_step x env.num_envs = {a.n_step * cfg.env.num_envs}"),
        (1 <= a.critic_subset <= a.num_critics,
         f"algo.critic_subset must be in [1, algo.num_critics={a.num_critics}], got {a.critic_subset}"),
        (a.actor_q in ACTOR_Q, f"algo.actor_q must be one of {sorted(ACTOR_Q)}, got {a.actor_q!r}"),
        (a.init_temperature > 0, f"algo.init_temperature must be > 0, got {a.init_temperature}"),
        (a.target_entropy_scale > 0, f"algo.target_entropy_scale must be > 0, got {a.target_entropy_scale}"),
        (a.demo_episodes >= 0, f"algo.demo_episodes must be >= 0, got {a.demo_episodes}"),
        (a.demo_episodes == 0 or not cfg.data.paths,
         f"algo.demo_episodes={a.demo_episodes} plays the scripted expert and data.paths names recorded "
         "demonstrations: set algo.demo_episodes=0 to learn from the datasets (or drop data.paths)"),
        (0 <= a.demo_ratio < 1 or not has_demonstrations(cfg),
         f"algo.demo_ratio must be in [0, 1) with demonstrations (0: for pre-training only), got {a.demo_ratio}"),
        (a.demo_ratio > 0 or a.pretrain_steps > 0 or not has_demonstrations(cfg),
         "algo.demo_ratio=0 samples no demonstrations online and algo.pretrain_steps=0 pre-trains on none: set one "
         "of them, or drop the demonstrations"),
        (a.pretrain_steps >= 0, f"algo.pretrain_steps must be >= 0, got {a.pretrain_steps}"),
        (a.pretrain_steps == 0 or has_demonstrations(cfg),
         "algo.pretrain_steps pre-trains on demonstrations: set algo.demo_episodes >= 1 or data.paths"),
        (a.cql_alpha >= 0, f"algo.cql_alpha must be >= 0, got {a.cql_alpha}"),
        (a.cql_actions >= 1, f"algo.cql_actions must be >= 1, got {a.cql_actions}"),
        (a.critic_learning_rate > 0, f"algo.critic_learning_rate must be > 0, got {a.critic_learning_rate}"),
        (a.bc_coef >= 0, f"algo.bc_coef must be >= 0, got {a.bc_coef}"),
        (a.pretrained_anchor_coef >= 0, f"algo.pretrained_anchor_coef must be >= 0, got {a.pretrained_anchor_coef}"),
        (a.actor_warmup_updates >= 0, f"algo.actor_warmup_updates must be >= 0, got {a.actor_warmup_updates}"),
        (a.pretrained_anchor_steps >= 1,
         f"algo.pretrained_anchor_steps must be >= 1 (env-steps over which the anchor fades), got "
         f"{a.pretrained_anchor_steps}"),
        (a.pretrained_anchor_coef == 0 or a.pretrain_steps > 0 or bool(cfg.init_from),
         "algo.pretrained_anchor_coef anchors the actor to a pre-trained one: set algo.pretrain_steps >= 1 or "
         "init_from=<policy directory>, or algo.pretrained_anchor_coef=0"),
        (a.bc_coef == 0 or has_demonstrations(cfg),
         "algo.bc_coef clones demonstrations: set algo.demo_episodes >= 1 or data.paths"),
        (a.collector == "transitions", f"algo={a.name} stores whole steps in its replay buffer: algo.collector must be "
                                       f"transitions, got {a.collector!r}"),
    ]


register_algorithm(Algorithm("sac", SACConfig, trainer="offpolicy", checks=sac_checks,
                             summary="soft actor-critic from a replay buffer (twin or ensemble Q, auto temperature)"))

"""PPO (actor-critic, GAE advantages, target-KL early stop), declared in one file: its loss and its ``Algorithm``.

value_clip (e.g. 0.2, as CleanRL) clips value updates; off as in Stable-Baselines3. Env-steps to 80% on PushCube
with it on -> off: 64-unit MLPs 384k -> 320k and 480k -> 352k (seeds 1, 2); 256-unit MLPs 288k -> 384k (seed 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from embodied.algorithms.config import AlgoConfig
from embodied.algorithms.losses import broadcast, clipped_surrogate, ratio_stats, reduce_logprob
from embodied.algorithms.registry import Algorithm, register_algorithm, register_loss


register_algorithm(Algorithm("ppo", AlgoConfig,
                             summary="actor-critic PPO on fixed-length step rollouts (GAE, clipped surrogate)"))


@register_loss("ppo", needs=("returns", "old_values"), reports_approx_kl=True)
def ppo_loss(policy, batch: dict, cfg) -> tuple[torch.Tensor, dict]:
    """Actor-critic PPO: clipped surrogate (clip-low/high, dual clip) + value loss - entropy bonus.

    batch: obs, action [B, T, A], old_logprob [B, T, A], advantages [B], returns [B], old_values [B].
    """
    logprob, entropy, values = policy.evaluate(batch["obs"], batch["action"])  # [B,T,A], [B,T,A], [B]
    new_lp = reduce_logprob(logprob, cfg.logprob_granularity)  # [B] / [B,T] / [B,T,A]
    old_lp = reduce_logprob(batch["old_logprob"], cfg.logprob_granularity)
    log_ratio = new_lp - old_lp
    ratio = log_ratio.exp()
    advantages = batch["advantages"]  # [B]
    if cfg.normalize_advantages and advantages.numel() > 1:  # one sample has no spread (its std is NaN)
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    adv = broadcast(advantages, ratio)
    policy_loss = clipped_surrogate(ratio, adv, cfg.clip_low, cfg.clip_high, cfg.dual_clip).mean()

    returns, old_values = batch["returns"], batch["old_values"]  # [B], [B]
    clipped_values = values
    if cfg.value_clip is not None:
        clipped_values = old_values + (values - old_values).clamp(-cfg.value_clip, cfg.value_clip)
    if cfg.huber_delta is not None:
        huber = lambda v: F.huber_loss(v, returns, reduction="none", delta=cfg.huber_delta)  # noqa: E731
        value_loss = torch.maximum(huber(values), huber(clipped_values)).mean()
    else:
        value_loss = 0.5 * torch.maximum((values - returns).pow(2), (clipped_values - returns).pow(2)).mean()

    entropy_mean = entropy.sum(-1).mean()  # per executed action
    loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy_mean
    with torch.no_grad():
        stats = {
            "policy_loss": policy_loss.item(),
            "value_loss": value_loss.item(),
            "entropy": entropy_mean.item(),
            **ratio_stats(ratio, log_ratio, cfg),
        }
    return loss, stats

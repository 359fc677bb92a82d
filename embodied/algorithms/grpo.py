"""GRPO: groups of rollouts from identical resets, group-normalised returns, no critic, dynamic sampling, an
optional KL term to a reference policy. Declared in one file: its defaults, loss and ``Algorithm``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from embodied.algorithms.config import AlgoConfig
from embodied.algorithms.losses import broadcast, clipped_surrogate, kl_k3, ratio_stats, reduce_logprob
from embodied.algorithms.registry import Algorithm, register_algorithm, register_loss


@dataclass
class GRPOConfig(AlgoConfig):
    """GRPO's defaults (``algo=grpo``): the groups collector, group-normalised advantages, two epochs, DAPO's
    asymmetric clip (clip_high 0.28), no target-KL stop."""

    name: str = "grpo"
    collector: str = "groups"
    advantage: str = "grpo"
    loss: str = "grpo"
    update_epochs: int = 2
    clip_high: float = 0.28
    target_kl: Optional[float] = None


register_algorithm(Algorithm("grpo", GRPOConfig,
                             summary="critic-free GRPO on episode groups from identical resets (+ KL to a reference)"))


@register_loss("grpo", kl_term=True, reports_approx_kl=True)
def grpo_loss(policy, batch: dict, cfg) -> tuple[torch.Tensor, dict]:
    """Critic-free GRPO: clipped surrogate on group-normalised trajectory advantages + beta * KL(pi || ref).

    batch: obs, action [B, T, A], old_logprob [B, T, A], advantages [B], and ref_logprob [B, T, A] when
    cfg.kl_coef > 0. The KL is estimated with k3 per action on the sampled actions.
    """
    logprob, entropy, _ = policy.evaluate(batch["obs"], batch["action"])  # [B, T, A]
    new_lp = reduce_logprob(logprob, cfg.logprob_granularity)
    old_lp = reduce_logprob(batch["old_logprob"], cfg.logprob_granularity)
    log_ratio = new_lp - old_lp
    ratio = log_ratio.exp()
    adv = broadcast(batch["advantages"], ratio)
    policy_loss = clipped_surrogate(ratio, adv, cfg.clip_low, cfg.clip_high, cfg.dual_clip).mean()
    loss = policy_loss
    kl_value = 0.0
    if cfg.kl_coef > 0:
        kl = kl_k3(logprob.sum(-1), batch["ref_logprob"].sum(-1)).mean()  # per executed action
        loss = loss + cfg.kl_coef * kl
        kl_value = kl.item()
    entropy_mean = entropy.sum(-1).mean()
    loss = loss - cfg.entropy_coef * entropy_mean
    with torch.no_grad():
        stats = {
            "policy_loss": policy_loss.item(),
            "kl_ref": kl_value,
            "entropy": entropy_mean.item(),
            **ratio_stats(ratio, log_ratio, cfg),
        }
    return loss, stats

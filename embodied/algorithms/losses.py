"""Policy-gradient losses. Each reads top to bottom; shapes are commented. B = samples in the minibatch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from embodied.algorithms.registry import register_loss


def reduce_logprob(logprob: torch.Tensor, granularity: str) -> torch.Tensor:
    """Sum per-dimension log-probs [B, T, A] to the ratio granularity.

    token: one ratio per action dimension [B, T, A]; action: per executed action [B, T]; chunk: per chunk [B].
    """
    if granularity == "token":
        return logprob
    if granularity == "action":
        return logprob.sum(-1)
    if granularity == "chunk":
        return logprob.sum(dim=(-1, -2))
    raise ValueError(f"logprob granularity must be 'token', 'action' or 'chunk', got {granularity!r}")


def _broadcast(advantages: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Advantages [B] broadcast to the ratio shape [B, ...]."""
    return advantages.view(-1, *([1] * (like.ndim - 1))).expand_as(like)


def kl_k3(logprob: torch.Tensor, ref_logprob: torch.Tensor) -> torch.Tensor:
    """Low-variance, non-negative estimator of KL(pi || ref) from samples of pi (Schulman's k3)."""
    log_ratio = ref_logprob - logprob
    return torch.exp(log_ratio) - log_ratio - 1.0


def clipped_surrogate(ratio, advantages, clip_low: float, clip_high: float, dual_clip: float | None):
    """PPO's pessimistic clipped objective as a loss (to minimise), elementwise; with optional dual clip."""
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    if dual_clip is not None:  # bound the loss for negative advantages when the ratio explodes (Ye et al. 2020)
        loss = torch.where(advantages < 0, torch.minimum(loss, -advantages * dual_clip), loss)
    return loss


def ratio_stats(ratio: torch.Tensor, log_ratio: torch.Tensor, cfg) -> dict:
    """Diagnostics of the importance ratio: approx KL(old || new) (k3) and the fraction outside the clip range."""
    return {"approx_kl": ((ratio - 1) - log_ratio).mean().item(),
            "clip_fraction": ((ratio < 1 - cfg.clip_low) | (ratio > 1 + cfg.clip_high)).float().mean().item()}


@register_loss("ppo", needs=("returns", "old_values"))
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
    adv = _broadcast(advantages, ratio)
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


@register_loss("grpo", kl_term=True)
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
    adv = _broadcast(batch["advantages"], ratio)
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


@register_loss("opd")
def on_policy_distillation_loss(policy, batch: dict, cfg) -> tuple[torch.Tensor, dict]:
    """On-policy distillation (VLA-OPD): minimise the reverse KL(student || teacher) on the student's rollouts.

    The reward of each sampled action is log pi_teacher(a|s) - log pi_student(a|s), a one-sample estimate of
    the negative reverse KL; the student follows its clipped policy gradient. No environment reward is used.
    batch: obs, action [B, T, A], old_logprob [B, T, A] (student at sampling), ref_logprob [B, T, A] (teacher).
    """
    logprob, entropy, _ = policy.evaluate(batch["obs"], batch["action"])  # [B, T, A]
    new_lp = logprob.sum(-1)  # [B, T] per executed action
    old_lp = batch["old_logprob"].sum(-1)  # [B, T]
    teacher_lp = batch["ref_logprob"].sum(-1)  # [B, T]
    advantages = teacher_lp - old_lp  # [B, T]: high where the teacher likes the student's action more
    log_ratio = new_lp - old_lp
    ratio = log_ratio.exp()
    policy_loss = clipped_surrogate(ratio, advantages, cfg.clip_low, cfg.clip_high, cfg.dual_clip).mean()
    loss = policy_loss - cfg.entropy_coef * entropy.sum(-1).mean()
    with torch.no_grad():
        stats = {
            "policy_loss": policy_loss.item(),
            "reverse_kl": (old_lp - teacher_lp).mean().item(),
            "entropy": entropy.sum(-1).mean().item(),
            **ratio_stats(ratio, log_ratio, cfg),
        }
    return loss, stats


on_policy_distillation_loss.needs_reference = True  # update_policy computes the teacher's ref_logprob

"""Pieces shared by the policy-gradient losses of ppo.py, grpo.py and opd.py. B = samples in the minibatch."""

from __future__ import annotations

import torch


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


def broadcast(advantages: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
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

"""On-policy distillation (VLA-OPD): the student rolls out, a frozen teacher scores its actions, the student
minimises the reverse KL(student || teacher). No env reward is used. Declared in one file: its own setting
(``algo.teacher``), checks, loss and ``Algorithm``; the example of the README's "Adding an algorithm"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from embodied.algorithms.config import AlgoConfig
from embodied.algorithms.losses import clipped_surrogate, ratio_stats
from embodied.algorithms.registry import Algorithm, register_algorithm, register_loss


@dataclass
class OPDConfig(AlgoConfig):
    """OPD's settings (``algo=opd algo.teacher=<dir>``): PPO's step collector, four epochs, no target-KL stop."""

    name: str = "opd"
    loss: str = "opd"
    teacher: str = ""  # directory of the teacher policy (save_pretrained format, e.g. runs/<name>/final_policy)
    rollout_steps: int = 25
    update_epochs: int = 4
    target_kl: Optional[float] = None


def opd_checks(cfg) -> list[tuple[bool, str]]:
    """A teacher must be named."""
    return [(bool(cfg.algo.teacher), "algo=opd needs algo.teacher=<policy directory written by save_pretrained>")]


register_algorithm(Algorithm("opd", OPDConfig, checks=opd_checks,
                             summary="on-policy distillation: reverse KL to a frozen teacher, no env reward"))


@register_loss("opd", needs_teacher=True, reports_approx_kl=True)
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

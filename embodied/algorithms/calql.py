"""Cal-QL (Nakamoto et al. 2023, "Calibrated Offline RL Pre-Training for Efficient Online Fine-Tuning"): the
conservative term the critics of an offline pre-training phase add to SAC's TD loss (``algo.pretrain_steps``, run by
embodied/runner/offpolicy.py on the demonstration buffer before any env-step).

CQL pushes Q down on actions the data did not take (uniform random ones and the policy's own, at s and at s') and up on
the data's, so the pre-trained actor cannot climb onto over-estimated actions. Cal-QL clips the pushed-down Q of the
policy's actions from below at the data's Monte-Carlo return-to-go: Q stays calibrated (never under the value of the
demonstrations), which the paper credits for online fine-tuning without an "unlearning" dip (on PickCube from 20
demonstrations the dip still comes: README, "Off-policy RL").
"""

from __future__ import annotations

import math

import torch

from embodied.rollout.obs import select


def calql_regularizer(policy, critic, batch: dict, q_data: torch.Tensor, mc_return: torch.Tensor,
                      num_actions: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sum over members of ``mean(logsumexp_a Q(s, a) - Q(s, a_data))``; the logsumexp runs over ``num_actions``
    uniform actions and ``num_actions`` policy samples at s and at s' each (importance-weighted by their densities),
    with the policy samples' Q clipped from below at ``mc_return``.

    batch: obs and next_obs of B transitions; q_data [E, B] = Q(s, a_data) with gradients; mc_return [B].
    """
    members, b = q_data.shape
    features = policy.features(batch["obs"]).repeat_interleave(num_actions, dim=0)  # [B n, F]; a pixel encoder too
    rows = torch.arange(b, device=q_data.device).repeat_interleave(num_actions)  # [B n]: each row n times
    with torch.no_grad():
        action_now, logprob_now = policy.rsample(select(batch["obs"], rows))  # [B n, 1, A], [B n]
        action_next, logprob_next = policy.rsample(select(batch["next_obs"], rows))
    action_dim = action_now.shape[-1]
    uniform = torch.rand(b * num_actions, action_dim, generator=generator).to(q_data.device) * 2 - 1  # [B n, A]
    floor = mc_return[None, :, None]  # [1, B, 1]

    def q_of(action):  # [B n, A] -> [E, B, n]
        return critic(features, action).view(members, b, num_actions)

    candidates = torch.cat([
        q_of(uniform) + action_dim * math.log(2.0),  # - log density of U[-1, 1]^A
        torch.maximum(q_of(action_now[:, 0]), floor) - logprob_now.view(1, b, num_actions),
        torch.maximum(q_of(action_next[:, 0]), floor) - logprob_next.view(1, b, num_actions),
    ], dim=-1)  # [E, B, 3n]
    gap = torch.logsumexp(candidates, dim=-1) - q_data  # [E, B]
    return gap.mean(dim=1).sum()

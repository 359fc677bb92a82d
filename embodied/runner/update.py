"""One policy update: epochs of shuffled minibatches through the registered loss, with target-KL early stop."""

from __future__ import annotations

import torch
from torch import nn

from embodied.algorithms import get_loss
from embodied.dist.data_parallel import average_gradients, mean_over_ranks, world_size
from embodied.rollout.device_bridge import to_device
from embodied.rollout.obs import TEACHER_OBS, select


def set_annealed_lr(optimizer, base_lr: float, done: int, total: int) -> float:
    """``algo.anneal_lr``: the learning rate decays linearly from ``base_lr`` to 0 over ``total`` steps
    (``done`` finished so far, as CleanRL anneals PPO); set on every parameter group and returned."""
    lr = base_lr * (1.0 - done / max(total, 1))
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def minibatch_indices(order: torch.Tensor, minibatch: int, count: int | None = None) -> list[torch.Tensor]:
    """``order`` split into minibatches of ``minibatch``; a remainder of one sample joins the minibatch before it
    (alone it has no advantage spread to normalise by). With ``count``: exactly that many near-equal minibatches
    (data-parallel ranks whose batch sizes differ must all make the same number of gradient all-reduces)."""
    if count is not None:
        return list(torch.tensor_split(order, count))
    parts = list(order.split(minibatch))
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2:] = [torch.cat(parts[-2:])]
    return parts


def std_parameters(policy) -> list:
    """The policy's learned action std (parameters named ``log_std``); an error names the fix when it has none."""
    params = [p for name, p in policy.named_parameters() if name.split(".")[-1] == "log_std"]
    if not params:
        raise ValueError(f"algo.anchor_fits_std=false holds the std out of the anchor, but {type(policy).__name__} "
                         "has no log_std parameter: set algo.anchor_fits_std=true")
    return params


def update_policy(policy, optimizer, batch: dict, cfg, reference=None, anchor=None) -> dict:
    """Optimise ``cfg.loss`` on ``batch`` for ``cfg.update_epochs`` epochs; returns mean loss statistics.

    With ``reference`` (a KL reference or a distillation teacher) the batch gets its log-probabilities of the
    sampled actions, ``ref_logprob``, before the first epoch. With ``anchor`` (an iterator of demonstration
    batches) and ``cfg.anchor_coef`` > 0 every minibatch's loss is RL loss + anchor_coef *
    policy.sft_loss(next demonstration batch); with ``cfg.anchor_fits_std`` false the
    anchor's gradient on the std (parameters named log_std) is dropped.
    """
    loss_fn = get_loss(cfg.loss)
    size, device = batch["action"].shape[0], batch["action"].device
    minibatch = max(1, size // cfg.num_minibatches)
    reference_obs = batch["obs"].get(TEACHER_OBS, batch["obs"])  # a distillation teacher reads its own inputs
    batch = batch | {"obs": {key: value for key, value in batch["obs"].items() if key != TEACHER_OBS}}
    if reference is not None:
        with torch.no_grad():
            batch["ref_logprob"] = torch.cat([
                reference.evaluate(select(reference_obs, idx), batch["action"][idx])[0]
                for idx in torch.arange(size, device=device).split(minibatch)
            ])
    stepped = [p for group in optimizer.param_groups for p in group["params"]]  # all, or the critic in a warm-up
    held_std = [] if anchor is None or cfg.anchor_fits_std else std_parameters(policy)
    totals: dict[str, float] = {}
    count = 0
    stopped_early = False
    equal_count = cfg.num_minibatches if world_size() > 1 else None  # data-parallel: same splits on every rank
    for _ in range(cfg.update_epochs):
        for idx in minibatch_indices(torch.randperm(size, device=device), minibatch, equal_count):
            mb = {key: (select(value, idx) if key == "obs" else value[idx]) for key, value in batch.items()}
            loss, stats = loss_fn(policy, mb, cfg)
            policy.zero_grad()
            loss.backward()
            if anchor is not None and cfg.anchor_coef > 0:
                anchor_loss = policy.sft_loss(to_device(next(anchor), device))  # demonstrations load on the CPU
                stats["anchor_sft_loss"] = anchor_loss.item()
                stats["anchor_to_rl_loss_ratio"] = cfg.anchor_coef * anchor_loss.item() / max(abs(loss.item()), 1e-8)
                rl_std_grads = [None if p.grad is None else p.grad.clone() for p in held_std]
                (cfg.anchor_coef * anchor_loss).backward()  # its own graph: the gradients add to the RL loss's
                for param, grad in zip(held_std, rl_std_grads):  # the std keeps the RL loss's gradient alone
                    param.grad = grad
            average_gradients(policy.parameters())  # data-parallel learners (torchrun); a no-op otherwise
            stats["grad_norm"] = nn.utils.clip_grad_norm_(stepped, cfg.max_grad_norm).item()
            optimizer.step()
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + value
            count += 1
            if cfg.target_kl is not None and mean_over_ranks(stats["approx_kl"]) > cfg.target_kl:
                stopped_early = True
                break
        if stopped_early:
            break
    out = {key: value / max(count, 1) for key, value in totals.items()}
    out["minibatch_updates"] = count
    out["early_stopped"] = float(stopped_early)
    return out

"""Supervised steps on demonstrations, shared by ``algo=sft`` and the SFT stage of an RL run (RL-Co stage 1)."""

from __future__ import annotations

import time

import torch
from torch import nn
from tqdm import tqdm

from embodied.algorithms.sft import PRECISIONS
from embodied.data.batches import DemoStream
from embodied.rollout.device_bridge import to_device


def sft_step(policy, optimizer, batch: dict, max_grad_norm: float, scenes: dict | None = None,
             precision: str = "fp32") -> dict:
    """One gradient step on ``policy.sft_loss(batch)`` (+ ``policy.scene_loss(scenes)`` when scenes are given),
    the forward pass in ``precision``; returns the losses, gradient norm and step time."""
    start = time.perf_counter()
    dtype = PRECISIONS[precision]
    with torch.autocast(torch.device(policy.device).type, dtype=dtype, enabled=dtype is not None):
        loss = policy.sft_loss(to_device(batch, policy.device))  # demonstrations load on the CPU
        stats = {"sft_loss": loss.item()}
        if scenes is not None:
            scene_loss = policy.scene_loss(to_device(scenes, policy.device))
            stats["scene_loss"] = scene_loss.item()
            loss = loss + scene_loss
    optimizer.zero_grad()
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm).item()
    optimizer.step()
    return stats | {"grad_norm": grad_norm, "step_time_s": time.perf_counter() - start}


def demonstrations(cfg, policy) -> DemoStream:
    """Endless batches from ``data.paths`` (mixed by ``data.weights``); the policy adopts the mixture's statistics."""
    data = DemoStream(list(cfg.data.paths), list(cfg.data.weights), cfg.algo.batch_size, policy.chunk_size,
                      cfg.experiment.seed)
    policy.set_dataset_stats(data.stats)
    return data


def sft_stage(cfg, policy, logger) -> None:
    """``algo.sft_stage_steps`` SFT steps on ``data.paths`` (mixed by ``data.weights``) before RL starts.

    The policy adopts the mixture's observation statistics first, as ``algo=sft`` does; scalars go to ``stage1/``.
    """
    a = cfg.algo
    data = demonstrations(cfg, policy)
    optimizer = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=a.sft_learning_rate)
    for step in tqdm(range(1, a.sft_stage_steps + 1), disable=not cfg.experiment.progress,
                     desc=f"{cfg.experiment.name} stage 1 (sft)", unit="step", dynamic_ncols=True):
        logger.scalars("stage1", sft_step(policy, optimizer, next(data), a.max_grad_norm), step)

"""Learner data parallelism across processes (launched by torchrun), as CleanRL's multi-GPU PPO.

Learners run on the CPU for now (``LEARNER_DEVICE``; a GPU simulator's results are copied to them), so ranks
average over gloo; NCCL and one GPU per rank come with a GPU learner.

Every rank runs the whole trainer on its own envs (seeded ``sub_seed(seed, rank)``); after each backward pass
the gradients are averaged across ranks (what torch DDP's reducer does), so every rank applies the same update
and the replicas stay identical. Normaliser statistics follow rank 0. Without WORLD_SIZE > 1 nothing changes.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env() -> tuple[int, int]:
    """Join the process group torchrun describes (WORLD_SIZE > 1); returns (rank, world size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():  # gloo: the learners' weights and gradients are on the CPU (LEARNER_DEVICE)
        dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size()


def world_size() -> int:
    """Number of data-parallel learner processes (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def average_gradients(parameters) -> None:
    """All-reduce the gradients of ``parameters`` to their mean over ranks (one flat buffer, one call)."""
    if world_size() == 1:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_over_ranks(value: float) -> float:
    """``value`` averaged over ranks (e.g. approx KL, so that every rank stops its epochs together)."""
    if world_size() == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor) / world_size()


def sync_from_rank0(module: torch.nn.Module, buffers_only: bool = False) -> None:
    """Copy rank 0's parameters and buffers (or only the buffers: normaliser statistics) to every rank."""
    if world_size() == 1:
        return
    for tensor in module.buffers() if buffers_only else module.state_dict().values():
        dist.broadcast(tensor, src=0)

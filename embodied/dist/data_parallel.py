"""Learner data parallelism across processes (launched by torchrun), as CleanRL's multi-GPU PPO.

With ``experiment.device`` cuda every rank takes the GPU of its ``LOCAL_RANK`` and the ranks average over NCCL;
on the CPU they average over gloo.

Every rank runs the whole trainer on its own envs (seeded ``sub_seed(seed, rank)``); after each backward pass
the gradients are averaged across ranks (what torch DDP's reducer does), so every rank applies the same update
and the replicas stay identical. Normaliser statistics follow rank 0. Without WORLD_SIZE > 1 nothing changes.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from embodied.rollout.device_bridge import learner_device


def init_from_env(device: str = "cpu") -> tuple[int, int]:
    """Join the process group torchrun describes (WORLD_SIZE > 1); returns (rank, world size).

    ``device`` is ``experiment.device``: with cuda (or auto on a GPU machine) the rank's GPU becomes the current
    device, so ``cuda`` resolves to it, and gradients travel over NCCL.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    on_gpu = learner_device(device).type == "cuda"
    if on_gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if on_gpu else "gloo")
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
    on_gpu = dist.get_backend() == "nccl"  # NCCL reduces tensors on the current GPU only
    tensor = torch.tensor([value], dtype=torch.float64, device="cuda" if on_gpu else "cpu")
    dist.all_reduce(tensor)
    return float(tensor) / world_size()


def min_over_ranks(value: int) -> int:
    """The smallest ``value`` of any rank (e.g. batch sizes, so that every rank makes the same update calls)."""
    if world_size() == 1:
        return value
    on_gpu = dist.get_backend() == "nccl"
    tensor = torch.tensor([value], dtype=torch.int64, device="cuda" if on_gpu else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor)


def sync_from_rank0(module: torch.nn.Module, buffers_only: bool = False) -> None:
    """Copy rank 0's parameters and buffers (or only the buffers: normaliser statistics) to every rank."""
    if world_size() == 1:
        return
    for tensor in module.buffers() if buffers_only else module.state_dict().values():
        dist.broadcast(tensor, src=0)

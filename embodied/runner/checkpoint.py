"""Checkpoints: policy in safetensors + config JSON (save_pretrained), trainer state loaded with weights_only."""

from __future__ import annotations

import glob
import os

import torch

from policies import from_pretrained


def save_checkpoint(directory: str, iteration: int, policy, optimizer, collector, counters: dict) -> str:
    """Write ``<directory>/iter_<n>/`` with policy/, trainer_state.pt; returns its path."""
    path = os.path.join(directory, f"iter_{iteration:06d}")
    policy.save_pretrained(os.path.join(path, "policy"))
    state = {
        "iteration": iteration,
        "counters": counters,
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(policy.device) if policy.device.type == "cuda" else None,
        "collector": collector.state_dict(),
    }
    tmp = os.path.join(path, "trainer_state.pt.tmp")
    torch.save(state, tmp)
    os.replace(tmp, os.path.join(path, "trainer_state.pt"))  # complete checkpoints only
    return path


def latest_checkpoint(directory: str) -> str | None:
    """Newest complete checkpoint folder under ``directory``, or None."""
    complete = [p for p in sorted(glob.glob(os.path.join(directory, "iter_*")))
                if os.path.isfile(os.path.join(p, "trainer_state.pt"))]
    return complete[-1] if complete else None


def load_checkpoint(path: str, policy, optimizer, collector) -> tuple[int, dict]:
    """Restore weights, optimizer, RNG and env state in place; returns (iteration, counters)."""
    loaded = from_pretrained(os.path.join(path, "policy"))
    if loaded.policy_type != policy.policy_type:
        raise ValueError(f"{path} holds a {loaded.policy_type!r} policy but this run trains {policy.policy_type!r}: "
                         "resume with the run's own settings, or give this run its own experiment.name")
    policy.load_state_dict(loaded.state_dict())
    # on the CPU first: the optimizer moves its state to the parameters' device, RNG states must be CPU tensors
    state = torch.load(os.path.join(path, "trainer_state.pt"), weights_only=True, map_location="cpu")
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and policy.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], policy.device)
    try:
        collector.load_state_dict(state["collector"])
    except KeyError as missing:
        raise ValueError(f"{path} holds the rollout state of another collector (no {missing}): resume with the "
                         "dist.* and algo.collector settings of the run that wrote it") from None
    return int(state["iteration"]), dict(state["counters"])

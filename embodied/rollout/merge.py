"""Join the rollouts of several collectors (pipeline stages, env workers) into one training batch."""

from __future__ import annotations

import torch

from embodied.rollout.obs import concat


def merge_batches(batches: list[dict]) -> dict:
    """Concatenate flat training batches along the sample dim (empty batches are skipped)."""
    parts = [b for b in batches if b]
    if not parts:
        return {}
    return {key: concat([p[key] for p in parts]) if key == "obs" else torch.cat([p[key] for p in parts])
            for key in parts[0]}


def merge_metrics(metrics: list[dict]) -> dict:
    """Episode metrics averaged over all finished episodes (weighted by ``episodes``); ``env_steps`` summed."""
    out = {"env_steps": sum(m.get("env_steps", 0) for m in metrics)}
    episodes = sum(m.get("episodes", 0) for m in metrics)
    if episodes:
        keys = [k for k in next(m for m in metrics if m.get("episodes")) if k not in ("env_steps", "episodes")]
        for key in keys:
            out[key] = sum(m[key] * m["episodes"] for m in metrics if m.get("episodes")) / episodes
        out["episodes"] = episodes
    return out


def sub_seed(seed: int, index: int) -> int:
    """Seed of part ``index`` of a run split into parts (worker or stage); part 0 keeps the run's seed."""
    return int(seed) + 1_000_003 * int(index)

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


COUNTS = ("env_steps", "episodes", "kept_groups", "dropped_groups")  # summed over parts; the rest are means


def merge_metrics(metrics: list[dict]) -> dict:
    """Counts summed; every other metric averaged over all finished episodes (weighted by ``episodes``)."""
    out = {key: sum(m[key] for m in metrics if key in m) for key in COUNTS if any(key in m for m in metrics)}
    out.setdefault("env_steps", 0)
    if out.get("episodes"):
        keys = [k for k in next(m for m in metrics if m.get("episodes")) if k not in COUNTS]
        for key in keys:
            out[key] = sum(m[key] * m["episodes"] for m in metrics if m.get("episodes")) / out["episodes"]
    return out


def sub_seed(seed: int, index: int) -> int:
    """Seed of part ``index`` of a run split into parts (worker or stage); part 0 keeps the run's seed."""
    return int(seed) + 1_000_003 * int(index)

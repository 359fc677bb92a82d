"""``<run>/summary.json``: what a finished run achieved and where its outputs went, for a script or a person
who comes back later."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

from embodied.config.schema import TrainConfig
from embodied.data.lerobot_format import atomic_write_json

EVAL_KEYS = ("success_once", "success_at_end", "episode_return", "episodes")


def config_hash(cfg: TrainConfig) -> str:
    """First 12 hex digits of the sha256 of the resolved config (same settings, same hash)."""
    text = json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_summary(cfg: TrainConfig, eval_history: list[dict], final: dict, counters: dict, sft_steps: int,
                wall_seconds: float, eval_seconds: float) -> dict:
    """The summary of a finished run; ``eval_history`` holds every evaluation, the final one last."""
    best = max(eval_history, key=lambda e: (e["success_once"], e["success_at_end"]))
    training_seconds = wall_seconds - eval_seconds
    out = cfg.experiment.output_dir
    videos = os.path.join(out, "videos")
    return {
        "experiment": cfg.experiment.name, "config_hash": config_hash(cfg), "task": cfg.env.task,
        "algo": cfg.algo.name, "policy": cfg.policy.name, "seed": cfg.experiment.seed,
        "final_eval": {k: final[k] for k in EVAL_KEYS},
        "best_eval": {k: best[k] for k in EVAL_KEYS} | {"env_steps": best["env_steps"], "step": best["step"]},
        "env_steps": counters["env_steps"], "sft_steps": sft_steps,
        "wall_clock_s": round(wall_seconds, 2), "training_s": round(training_seconds, 2),
        "env_steps_per_s": round(counters["env_steps"] / training_seconds, 1) if training_seconds > 0 else None,
        "policy_dir": os.path.join(out, "final_policy"), "tensorboard_dir": os.path.join(out, "tb"),
        "videos": sorted(os.path.join(videos, f) for f in os.listdir(videos)) if os.path.isdir(videos) else [],
        "log": log if os.path.isfile(log := os.path.join(out, "hydra", "train.log")) else None,  # the CLI's
    }


def write_summary(cfg: TrainConfig, summary: dict) -> str:
    """Write ``summary`` to ``<run>/summary.json`` atomically; returns the path."""
    path = os.path.join(cfg.experiment.output_dir, "summary.json")
    atomic_write_json(path, summary)
    return path

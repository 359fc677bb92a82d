"""Residual RL vs full PPO fine-tuning on a precision task, from the same SFT base, same env-step budget.

Run: python benchmarks/residual.py [--task PickCube] [--demos 10] [--budget 640000]   (about 10 minutes)
1. The scripted expert records ``--demos`` PickCube episodes (place the cube within 2.5 cm of the marker,
   lifted); an MLP is trained on them by SFT: the base, success s0.
2. Residual PPO (experiment=residual: frozen base + zero-initialised correction) trains for ``--budget``
   env-steps.
3. Full PPO fine-tuning of the same base (every weight trains, the critic starts fresh) for the same budget.
Success is success_once over 64 fixed evaluation episodes (deterministic actions); seconds exclude
evaluation. Writes benchmarks/results/residual.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from results_io import write_results

from embodied.algorithms.sft import SFTConfig
from embodied.config.schema import TrainConfig
from embodied.data.demos import env_features, record_expert_demos
from embodied.data.writer import LeRobotDatasetWriter
from embodied.runner.sft import SFTTrainer
from embodied.runner.trainer import Trainer
from policies import from_pretrained
from sims import make_env

RESIDUAL = {"residual_scale": 0.5, "init_log_std": -1.5}  # as configs/experiment/residual.yaml


def base_config(task: str, out: str) -> TrainConfig:
    cfg = TrainConfig()
    cfg.env.task, cfg.env.num_envs = task, 64
    cfg.experiment.eval_episodes, cfg.experiment.eval_num_envs = 64, 32
    cfg.experiment.checkpoint_interval, cfg.experiment.progress, cfg.experiment.output_dir = 0, False, out
    return cfg


def train_base(task: str, demos: int, sft_steps: int, root: str) -> tuple[str, float, float]:
    """Record demos, SFT an MLP on them; (policy dir, s0, seconds)."""
    env = make_env(task=task, num_envs=16, autoreset=False)
    writer = LeRobotDatasetWriter.create(os.path.join(root, "demos"), fps=20, features=env_features(env))
    record_expert_demos(env, writer, num_episodes=demos, seed=0, progress=False)
    cfg = base_config(task, os.path.join(root, "sft"))
    cfg.algo = SFTConfig(sft_steps=sft_steps, sft_eval_interval=0)
    cfg.data.paths = [os.path.join(root, "demos")]
    start = time.perf_counter()
    trainer = SFTTrainer(cfg)
    metrics = trainer.train()
    return os.path.join(root, "sft", "final_policy"), metrics["success_once"], time.perf_counter() - start


def run_ppo(task: str, budget: int, base: str, residual: bool, root: str) -> dict:
    """Residual PPO on the frozen base, or PPO on every weight of the base; eval every 32k steps."""
    cfg = base_config(task, os.path.join(root, "residual" if residual else "finetune"))
    cfg.experiment.total_env_steps = budget
    cfg.experiment.eval_interval = max(1, 32_000 // (cfg.env.num_envs * cfg.algo.rollout_steps))
    if residual:
        cfg.policy.name, cfg.base = "residual", base
        cfg.policy.residual_scale, cfg.policy.init_log_std = RESIDUAL["residual_scale"], RESIDUAL["init_log_std"]
    trainer = Trainer(cfg)
    if not residual:
        trainer.policy.load_state_dict(from_pretrained(base).state_dict())
    start = time.perf_counter()
    final = trainer.train()
    seconds = time.perf_counter() - start - trainer.eval_seconds
    return {"final_success": final["success_once"], "seconds": seconds,
            "curve": [(h["env_steps"], h["success_once"]) for h in trainer.eval_history]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="PickCube")
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--sft-steps", type=int, default=1000)
    parser.add_argument("--budget", type=int, default=640_000)
    parser.add_argument("--out", default="benchmarks/results/residual.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as root:
        base, s0, sft_seconds = train_base(args.task, args.demos, args.sft_steps, root)
        results = {"task": args.task, "demos": args.demos, "budget_env_steps": args.budget, "s0": s0,
                   "sft_seconds": sft_seconds, "residual_settings": RESIDUAL,
                   "residual": run_ppo(args.task, args.budget, base, True, root),
                   "finetune": run_ppo(args.task, args.budget, base, False, root)}
    print(f"\n{args.task}: SFT base on {args.demos} demos, s0 = {s0:.2f}; {args.budget} env-steps of PPO each")
    print("| method | success | gain over s0 (points) | training s |")
    print("|---|---|---|---|")
    for name in ("residual", "finetune"):
        r = results[name]
        print(f"| {name} | {r['final_success']:.2f} | {100 * (r['final_success'] - s0):+.0f} | {r['seconds']:.0f} |")
    write_results(args.out, results)


if __name__ == "__main__":
    main()

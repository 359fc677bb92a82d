"""Our PPO vs Stable-Baselines3 PPO on PushCube (state), same env-step budget, same machine, one run.

Run: python benchmarks/rl_vs_sb3.py [--task PushCube] [--budget 600000] [--seed 1] [--hidden 64 64]
Reports wall-clock seconds to 80% eval success (success_once over 32 fixed episodes, deterministic actions)
and env-steps/s of each; evaluation time is excluded from both clocks. SB3 trains through the gymnasium
registration (embodied/<Task>-v0) in a DummyVecEnv with VecNormalize observations (our policy keeps running
observation statistics too); both take every PPO hyper-parameter from our default TrainConfig (rollout
length, gamma, lambda, epochs, minibatches, clip, value clip, value-loss weight, learning rate, target KL, grad
clip, initial log-std; ``--hidden`` sets both networks' sizes, by default SB3's own, 64 64).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import torch
from results_io import write_results

import sims  # noqa: F401  (registers gymnasium ids)
from embodied.config.schema import TrainConfig
from embodied.runner.trainer import Trainer

THRESHOLD = 0.8


def run_ours(task: str, budget: int, num_envs: int, eval_every: int, seed: int, hidden: list[int]) -> dict:
    cfg = TrainConfig()
    cfg.policy.hidden = hidden
    cfg.experiment.seed = seed
    cfg.env.task = task
    cfg.env.num_envs = num_envs
    cfg.experiment.total_env_steps = budget
    cfg.experiment.eval_interval = max(1, eval_every // (num_envs * cfg.algo.rollout_steps))
    cfg.experiment.eval_episodes = 32
    cfg.experiment.checkpoint_interval = 0
    cfg.experiment.progress = False
    cfg.experiment.output_dir = f"runs/bench_ours_{task}"
    trainer = Trainer(cfg)
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start - trainer.eval_seconds
    history = trainer.eval_history
    hit = next((h for h in history if h["success_once"] >= THRESHOLD), None)
    return {"seconds_to_80": hit["seconds"] if hit else None, "steps_to_80": hit["env_steps"] if hit else None,
            "final_success": history[-1]["success_once"], "env_steps_per_s": budget / total, "wall_s": total}


def sb3_eval(model, task: str, episodes: int) -> float:
    """success_once of SB3's deterministic policy over eval episodes 0..episodes-1 (same as ours)."""
    normalizer = model.get_vec_normalize_env()
    env = gym.make(f"embodied/{task}-v0")
    successes = 0
    for j in range(episodes):
        obs, _ = env.reset(seed=10_000, options={"reset_id": j})
        done, ok = False, False
        while not done:
            action, _ = model.predict(normalizer.normalize_obs(obs), deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            ok |= info["success"]
            done = terminated or truncated
        successes += ok
    return successes / episodes


def run_sb3(task: str, budget: int, num_envs: int, eval_every: int, seed: int, hidden: list[int]) -> dict:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    history = []

    class Eval(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next_eval = eval_every
            self.eval_time = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_eval:
                self.next_eval += eval_every
                t = time.perf_counter()
                success = sb3_eval(self.model, task, 32)
                self.eval_time += time.perf_counter() - t
                history.append({"env_steps": self.num_timesteps, "success_once": success,
                                "seconds": time.perf_counter() - start - self.eval_time})
            return True

    a, p = TrainConfig().algo, TrainConfig().policy
    vec = VecNormalize(make_vec_env(f"embodied/{task}-v0", n_envs=num_envs, seed=seed), norm_reward=False)
    model = PPO("MlpPolicy", vec, n_steps=a.rollout_steps, batch_size=num_envs * a.rollout_steps // a.num_minibatches,
                n_epochs=a.update_epochs, gamma=a.gamma, gae_lambda=a.gae_lambda, clip_range=a.clip_low,
                learning_rate=a.learning_rate, target_kl=a.target_kl, max_grad_norm=a.max_grad_norm,
                ent_coef=a.entropy_coef, clip_range_vf=a.value_clip,
                vf_coef=a.value_coef / 2,  # ours: value_coef * 0.5 * MSE (CleanRL's form); SB3's: vf_coef * MSE
                policy_kwargs={"net_arch": list(hidden), "log_std_init": p.init_log_std},
                seed=seed, device="cpu", verbose=0)
    callback = Eval()
    start = time.perf_counter()
    model.learn(total_timesteps=budget, callback=callback)
    total = time.perf_counter() - start - callback.eval_time
    hit = next((h for h in history if h["success_once"] >= THRESHOLD), None)
    return {"seconds_to_80": hit["seconds"] if hit else None, "steps_to_80": hit["env_steps"] if hit else None,
            "final_success": history[-1]["success_once"] if history else None,
            "env_steps_per_s": budget / total, "wall_s": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="PushCube")
    parser.add_argument("--budget", type=int, default=600_000)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--eval-every", type=int, default=32_000)
    parser.add_argument("--seed", type=int, default=1, help="seed of both runs")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64],
                        help="hidden layer sizes of both actor-critic MLPs (default: SB3's MlpPolicy default; "
                             "ours is 256 256)")
    parser.add_argument("--out", default="benchmarks/results/rl_vs_sb3.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {"seed": args.seed, "hidden": args.hidden,
               "ours": run_ours(args.task, args.budget, args.num_envs, args.eval_every, args.seed, args.hidden),
               "sb3": run_sb3(args.task, args.budget, args.num_envs, args.eval_every, args.seed, args.hidden)}
    o, s = results["ours"], results["sb3"]
    if o["seconds_to_80"] and s["seconds_to_80"]:
        results["speedup_to_80"] = s["seconds_to_80"] / o["seconds_to_80"]
    results["throughput_ratio"] = o["env_steps_per_s"] / s["env_steps_per_s"]
    print(f"\n{args.task}, budget {args.budget} env-steps, {args.num_envs} envs, hidden {args.hidden}, "
          f"threshold {THRESHOLD}")
    print(f"{'':>6} | {'s to 80%':>9} | {'steps to 80%':>12} | {'final success':>13} | {'env-steps/s':>11}")
    for name in ("ours", "sb3"):
        r = results[name]
        fmt = lambda v, f: "n/a" if v is None else format(v, f)  # noqa: E731
        print(f"{name:>6} | {fmt(r['seconds_to_80'], '9.1f'):>9} | {fmt(r['steps_to_80'], '12d'):>12} | "
              f"{fmt(r['final_success'], '13.2f'):>13} | {r['env_steps_per_s']:>11.0f}")
    print(f"throughput ratio ours/sb3: {results['throughput_ratio']:.1f}x; "
          f"speed-up to 80%: {results.get('speedup_to_80', 'n/a')}")
    write_results(args.out, results)


if __name__ == "__main__":
    main()

"""Scale: simulator env-steps/s per backend, and PPO training throughput single-process vs Ray vs pipelined.

Run: python benchmarks/scale.py [--iterations 6] [--out benchmarks/results/scale.json]
Simulators: random actions on PushCube (state) at each backend's natural size on this machine; a backend that
is not installed (or finds no device) is reported as such, not guessed. Training: PPO on PushCube, 64 envs x
50 steps per iteration (the VLA: 16 envs x 20 steps, 2 epochs), timed over ``--iterations`` iterations after
one warm-up; "collect" counts only the rollouts, "train" the whole loop (rollout + update). Rows: dist=single,
dist.pipeline_stages=2, dist=ray with 2 env workers, and both; for the state MLP and for a small VLA on 64x64
camera images (inference-heavy, the case pipelining targets). Ray's local cluster start and actor start-up are excluded.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from results_io import write_results  # noqa: E402

from embodied.config.schema import TrainConfig  # noqa: E402
from embodied.runner.trainer import Trainer  # noqa: E402
from embodied.runner.update import update_policy  # noqa: E402
from sims import make_env  # noqa: E402

VLA = {"name": "vla", "chunk_size": 1, "head": {"name": "gaussian"}, "vision": {"name": "tiny", "freeze": True},
       "language": {"name": "tiny", "freeze": True},
       "fusion": {"hidden_size": 64, "layers": 2, "heads": 4, "intermediate_size": 128}}


def sim_rate(backend: str, num_envs: int, steps: int = 50) -> float | str:
    """Env-steps/s of ``backend`` on PushCube with random actions, or why it could not run."""
    try:
        env = make_env(backend, task="PushCube", num_envs=num_envs)
    except (ImportError, KeyError, RuntimeError) as err:
        return f"n/a: {str(err).splitlines()[0][:80]}"
    env.reset(seed=0)
    gen = torch.Generator().manual_seed(0)
    device = getattr(env, "device", "cpu")  # device-resident backends get their actions there, as a policy would
    actions = [(torch.rand(num_envs, env.action_spec.dim, generator=gen) * 2 - 1).to(device) for _ in range(steps + 3)]
    for a in actions[:3]:
        env.step(a)
    start = time.perf_counter()
    for a in actions[3:]:
        env.step(a)
    rate = num_envs * steps / (time.perf_counter() - start)
    env.close()
    return rate


def train_rate(policy: str, backend: str, stages: int, iterations: int) -> dict:
    """Collect-only and full-loop env-steps/s of PPO on PushCube under one ``dist`` setting."""
    cfg = TrainConfig()
    cfg.env.task, cfg.env.num_envs = "PushCube", 64
    if policy == "vla":  # rendering and a transformer per step: fewer envs, shorter rollouts, 2 epochs
        cfg.env.num_envs, cfg.algo.rollout_steps, cfg.algo.update_epochs = 16, 20, 2
        cfg.policy.name = "vla"
        for key, value in VLA.items():
            setattr(cfg.policy, key, value)
        cfg.env.cameras, cfg.env.image_size = ["front"], [64, 64]
    cfg.dist.backend, cfg.dist.pipeline_stages = backend, stages
    cfg.dist.num_env_workers = 2 if backend == "ray" else 1
    cfg.experiment.progress, cfg.experiment.output_dir = False, f"runs/bench_scale_{policy}_{backend}_{stages}"
    trainer = Trainer(cfg)
    collector, algo = trainer.collector, cfg.algo
    collector.collect()  # warm-up
    collect_s = update_s = 0.0
    steps = 0
    for _ in range(iterations):
        start = time.perf_counter()
        batch, metrics = collector.collect()
        collect_s += time.perf_counter() - start
        steps += metrics["env_steps"]
        start = time.perf_counter()
        torch.set_num_threads(trainer.update_threads)
        update_policy(trainer.policy, trainer.optimizer, batch, algo)
        torch.set_num_threads(cfg.experiment.torch_threads)
        update_s += time.perf_counter() - start
    if hasattr(collector, "close"):
        collector.close()
    return {"collect": steps / collect_s, "train": steps / (collect_s + update_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--cpu-envs", type=int, default=256)
    parser.add_argument("--warp-envs", type=int, default=4096 if torch.cuda.is_available() else 8)
    parser.add_argument("--out", default="benchmarks/results/scale.json")
    parser.add_argument("--sims-only", action="store_true", help="measure the simulators, skip the training table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sims = {"mujoco (CPU)": (args.cpu_envs, sim_rate("mujoco", args.cpu_envs)),
            "mujoco_warp": (args.warp_envs, sim_rate("mujoco_warp", args.warp_envs)),
            "maniskill": (args.warp_envs, sim_rate("maniskill", args.warp_envs))}
    print(f"\nSimulators (PushCube, random actions), {os.cpu_count()} CPUs, "
          f"GPU: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    print(f"{'backend':>14} | {'envs':>5} | env-steps/s")
    for name, (n, rate) in sims.items():
        print(f"{name:>14} | {n:>5} | {rate if isinstance(rate, str) else format(rate, ',.0f')}")

    if args.sims_only:
        simulators = {k: {"num_envs": n, "env_steps_per_s": r} for k, (n, r) in sims.items()}
        write_results(args.out, {"cpus": os.cpu_count(), "gpu": torch.cuda.is_available(), "simulators": simulators})
        return
    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    settings = [("single", 1), ("single", 2), ("ray", 1), ("ray", 2)]
    training = {}
    for policy in ("mlp", "vla"):
        for backend, stages in settings:
            key = f"{policy} {backend}{' pipelined' if stages == 2 else ''}"
            training[key] = train_rate(policy, backend, stages, args.iterations)
    ray.shutdown()
    print(f"\nPPO PushCube (MLP: 64 envs x 50 steps; VLA: 16 x 20), {args.iterations} iterations: env-steps/s "
          "(ratio to single)")
    print(f"{'setting':>22} | {'collect':>8} | {'ratio':>5} | {'train':>8} | {'ratio':>5}")
    for key, r in training.items():
        base = training[f"{key.split()[0]} single"]
        r["collect_ratio"], r["train_ratio"] = r["collect"] / base["collect"], r["train"] / base["train"]
        print(f"{key:>22} | {r['collect']:>8,.0f} | {r['collect_ratio']:>5.2f} | {r['train']:>8,.0f} | "
              f"{r['train_ratio']:>5.2f}")
    write_results(args.out, {"cpus": os.cpu_count(), "gpu": torch.cuda.is_available(),
                             "simulators": {k: {"num_envs": n, "env_steps_per_s": r} for k, (n, r) in sims.items()},
                             "training": training})


if __name__ == "__main__":
    main()

"""Env-steps/s of the batched MuJoCo backend vs the raw MuJoCo bound, gymnasium SyncVectorEnv and ManiSkill3.

Run: python benchmarks/sim_throughput.py [--task PickCube] [--out benchmarks/results/sim_throughput.json]
One env-step is one control step (20 Hz, 10 physics substeps of 5 ms) of one world, as in ManiSkill's default
PickCube-v1 (sim 100 Hz, control 20 Hz).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import mujoco.batch  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import sims  # noqa: E402,F401  (registers the gymnasium ids)
from sims import make_env  # noqa: E402


def timed(fn, steps: int, warmup: int = 3) -> float:
    """Seconds per call of fn, after warm-up calls."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def ours_and_raw(task: str, num_envs: int, steps: int) -> tuple[float, float]:
    """Our env (state obs) and the raw bound: the same model, initial states and servo targets replayed
    by mujoco.batch alone on 2 threads, with no controller, observation or reward work in between."""
    env = make_env(task=task, num_envs=num_envs, num_threads=2)
    env.reset(seed=0)
    start_qpos, start_mocap = env.qpos.copy(), env.mocap_pos.copy()
    gen = torch.Generator().manual_seed(0)
    actions = [torch.rand(num_envs, env.action_spec.dim, generator=gen) * 2 - 1 for _ in range(steps)]
    controls = []
    start = time.perf_counter()
    for action in actions:
        env.step(action)
        controls.append(env.ctrl.copy())
    ours_rate = num_envs * steps / (time.perf_counter() - start)
    batch = mujoco.batch.Batch(env.model, nsim=num_envs, nthread=2)
    batch.reset()
    batch.qpos[:] = start_qpos
    batch.mocap_pos[:] = start_mocap
    batch.forward()
    start = time.perf_counter()
    for ctrl in controls:
        batch.ctrl[:] = ctrl
        batch.step(nstep=env.substeps)
    raw_rate = num_envs * steps / (time.perf_counter() - start)
    return ours_rate, raw_rate


def ours_rgb(task: str, num_envs: int, steps: int) -> float:
    env = make_env(task=task, num_envs=num_envs, cameras=("front",))
    env.reset(seed=0)
    action = torch.rand(num_envs, env.action_spec.dim, generator=torch.Generator().manual_seed(0)) * 2 - 1
    sec = timed(lambda: env.step(action), steps)
    env.close()
    return num_envs / sec


def gym_sync(task: str, num_envs: int, steps: int) -> float:
    vec = gym.vector.SyncVectorEnv([lambda: gym.make(f"embodied/{task}-v0") for _ in range(num_envs)])
    vec.reset(seed=0)
    action = vec.action_space.sample()
    sec = timed(lambda: vec.step(action), steps)
    vec.close()
    return num_envs / sec


def maniskill(num_envs: int, rgb: bool, steps: int) -> float | None:
    """ManiSkill3 PickCube-v1 on physx_cpu (one env per process via AsyncVectorEnv), or None if unavailable."""
    try:
        import mani_skill.envs  # noqa: F401
        from mani_skill.utils.wrappers.gymnasium import CPUGymWrapper
    except Exception:
        return None
    obs_mode = "rgb" if rgb else "state"

    def make():
        return CPUGymWrapper(gym.make("PickCube-v1", obs_mode=obs_mode, sim_backend="physx_cpu"))

    try:
        vec = gym.vector.AsyncVectorEnv([make for _ in range(num_envs)]) if num_envs > 1 else make()
        vec.reset(seed=0)
        action = vec.action_space.sample()
        sec = timed(lambda: vec.step(action), steps)
        vec.close()
    except Exception as error:  # no Vulkan device, missing assets, ...
        print(f"ManiSkill3 unavailable: {error}")
        return None
    return num_envs / sec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="PickCube")
    parser.add_argument("--sizes", default="1,16,64,256")
    parser.add_argument("--out", default="benchmarks/results/sim_throughput.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        state_steps = 50  # one full PickCube episode
        rgb_steps = max(5, 400 // n)
        state_rate, raw_rate = ours_and_raw(args.task, n, state_steps)
        row = {
            "num_envs": n,
            "ours_state": state_rate,
            "ours_rgb64": ours_rgb(args.task, n, rgb_steps),
            "raw_mujoco_bound": raw_rate,
            "gym_sync_vector": gym_sync(args.task, n, max(10, 1000 // n)),
            "maniskill_state": maniskill(n, False, 20) if n <= 16 else None,
        }
        row["state_vs_raw"] = row["ours_state"] / row["raw_mujoco_bound"]
        row["state_vs_gym_sync"] = row["ours_state"] / row["gym_sync_vector"]
        if row["maniskill_state"]:
            row["state_vs_maniskill"] = row["ours_state"] / row["maniskill_state"]
        rows.append(row)
        print(f"done num_envs={n}", flush=True)
    header = ["num_envs", "ours_state", "ours_rgb64", "raw_mujoco_bound", "gym_sync_vector", "maniskill_state",
              "state_vs_raw", "state_vs_gym_sync"]
    print(f"\n{args.task} env-steps/s (control 20 Hz, 10 substeps of 5 ms), {os.cpu_count()} CPU cores")
    print(" | ".join(f"{h:>16}" for h in header))
    for row in rows:
        cells = []
        for h in header:
            v = row.get(h)
            cells.append(f"{'n/a':>16}" if v is None else (f"{v:>16.2f}" if isinstance(v, float) else f"{v:>16}"))
        print(" | ".join(cells))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"task": args.task, "cpu_count": os.cpu_count(), "rows": rows}, f, indent=2)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

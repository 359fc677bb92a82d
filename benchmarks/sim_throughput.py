"""Env-steps/s of the batched MuJoCo backend vs the raw MuJoCo bound, gymnasium SyncVectorEnv and ManiSkill3, and
the camera renderer's frames/s vs drawing one frame per read.

Run: python benchmarks/sim_throughput.py [--task PickCube] [--out benchmarks/results/sim_throughput.json]
One env-step is one control step (20 Hz, 10 physics substeps of 5 ms) of one world, as in ManiSkill's default
PickCube-v1 (sim 100 Hz, control 20 Hz). Each rate is the median of --repeats runs of at least 2,000 env-steps
(one world: 2,000 control steps), so the one-env row is not a 50-step sample. The rendering table
(``--render-only`` runs just it) draws --render-envs worlds with 1 and 2 cameras at 64 and 128 px for each render
quality, against the renderer before tiling (``mujoco.Renderer``, one frame per ``mjr_readPixels``, one thread,
MuJoCo's default quality) on the same poses, and gives the share of pixels that differ from its images (any
channel) and the mean absolute difference (uint8 units).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import mujoco.batch  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import sims  # noqa: E402,F401  (registers the gymnasium ids)
from sims import make_env  # noqa: E402
from sims.mujoco.render import RENDER_QUALITIES, BatchRenderer  # noqa: E402

RENDER_CAMERAS = (("front",), ("front", "wrist"))
RENDER_SIZES = (64, 128)


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
    batch = mujoco.batch.Batch(env.model, nsim=num_envs, nthread=min(2, num_envs))  # the bound's best threads
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


def ours_rgb(task: str, num_envs: int, steps: int, render_quality: str = "full") -> float:
    env = make_env(task=task, num_envs=num_envs, cameras=("front",), render_quality=render_quality)
    env.reset(seed=0)
    action = torch.rand(num_envs, env.action_spec.dim, generator=torch.Generator().manual_seed(0)) * 2 - 1
    sec = timed(lambda: env.step(action), steps)
    env.close()
    return num_envs / sec


def varied_poses(task: str, num_envs: int) -> tuple:
    """The model and the qpos / mocap_pos of ``num_envs`` worlds 10 random control steps after a reset."""
    env = make_env(task=task, num_envs=num_envs)
    env.reset(seed=0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        env.step(torch.rand(num_envs, env.action_spec.dim, generator=gen) * 2 - 1)
    return env.model, env.qpos.copy(), env.mocap_pos.copy()


def per_frame_reference(model, qpos, mocap_pos, cameras, size: int) -> tuple[dict, float]:
    """The renderer before tiling (one ``mujoco.Renderer``, one frame per read, one thread, MuJoCo's default
    quality): its images and seconds."""
    renderer = mujoco.Renderer(model, size, size)
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
    data = mujoco.MjData(model)
    images = {c: np.empty((len(qpos), size, size, 3), dtype=np.uint8) for c in cameras}
    start = time.perf_counter()
    for i in range(len(qpos)):
        data.qpos[:], data.mocap_pos[:] = qpos[i], mocap_pos[i]
        mujoco.mj_kinematics(model, data)
        mujoco.mj_camlight(model, data)
        for camera in cameras:
            renderer.update_scene(data, camera)
            renderer.render(out=images[camera][i])
    seconds = time.perf_counter() - start
    renderer.close()
    return images, seconds


def render_rows(task: str, num_envs: int, repeats: int) -> list[dict]:
    """Frames/s of the reference and of BatchRenderer per quality, with the share of pixels (any channel) that
    differ from the reference's images of the same poses and the mean absolute difference."""
    model, qpos, mocap_pos = varied_poses(task, num_envs)
    rows = []
    for size in RENDER_SIZES:
        for cameras in RENDER_CAMERAS:
            frames = num_envs * len(cameras)
            runs = [per_frame_reference(model, qpos, mocap_pos, cameras, size) for _ in range(repeats)]
            reference, ref_rate = runs[0][0], frames / statistics.median(r[1] for r in runs)
            rows.append({"size": size, "cameras": "+".join(cameras), "renderer": "per-frame reference",
                         "frames_per_s": ref_rate, "vs_reference": 1.0, "pixels_differing": 0.0, "mean_abs_diff": 0.0})
            for quality in RENDER_QUALITIES:
                renderer = BatchRenderer(model, cameras, size, size, quality=quality, num_envs=num_envs)
                images = renderer.render(qpos, mocap_pos, None)  # warm-up: the first atlas allocates
                sec = statistics.median(timed(lambda: renderer.render(qpos, mocap_pos, None), 1, warmup=0)
                                        for _ in range(repeats))
                renderer.close()
                differing = np.mean([(images[c] != reference[c]).any(-1).mean() for c in cameras])
                gap = np.mean([np.abs(images[c].astype(np.int16) - reference[c]).mean() for c in cameras])
                rows.append({"size": size, "cameras": "+".join(cameras), "renderer": quality,
                             "frames_per_s": frames / sec, "vs_reference": frames / sec / ref_rate,
                             "pixels_differing": float(differing), "mean_abs_diff": float(gap)})
            print(f"done rendering {size} px {'+'.join(cameras)}", flush=True)
    return rows


def print_table(title: str, header: list[str], rows: list[dict]) -> None:
    """Rows as a ``|``-separated table under ``title``."""
    print(f"\n{title}")
    print(" | ".join(f"{h:>16}" for h in header))
    for row in rows:
        cells = []
        for h in header:
            v = row.get(h)
            cells.append(f"{'n/a':>16}" if v is None else (f"{v:>16.3f}" if isinstance(v, float) else f"{v:>16}"))
        print(" | ".join(cells))


def gym_sync(task: str, num_envs: int, steps: int) -> float:
    vec = gym.vector.SyncVectorEnv([lambda: gym.make(f"embodied/{task}-v0") for _ in range(num_envs)])
    vec.reset(seed=0)
    action = vec.action_space.sample()
    sec = timed(lambda: vec.step(action), steps)
    vec.close()
    return num_envs / sec


MANISKILL_SCRIPT = """
import sys, time, gymnasium as gym, mani_skill.envs
from mani_skill.utils.wrappers.gymnasium import CPUGymWrapper
n, steps = int(sys.argv[1]), int(sys.argv[2])
make = lambda: CPUGymWrapper(gym.make("PickCube-v1", obs_mode="state", sim_backend="physx_cpu"))
env = gym.vector.AsyncVectorEnv([make] * n) if n > 1 else make()
env.reset(seed=0)
action = env.action_space.sample()
for _ in range(5):
    env.step(action)
start = time.perf_counter()
for _ in range(steps):
    env.step(action)
print("RATE", n * steps / (time.perf_counter() - start))
"""


def maniskill(python: str | None, num_envs: int, steps: int = 200) -> float | None:
    """ManiSkill3 PickCube-v1, state obs, physx_cpu (sim 100 Hz, control 20 Hz), in its own interpreter
    (its pins conflict with ours; see scripts/setup_lavapipe.sh for the Vulkan it needs), or None."""
    if not python:
        return None
    try:
        result = subprocess.run([python, "-c", MANISKILL_SCRIPT, str(num_envs), str(steps)], capture_output=True,
                                text=True, timeout=300)
    except subprocess.TimeoutExpired:
        print(f"ManiSkill3 with {num_envs} env(s) did not finish in 300 s")
        return None
    for line in result.stdout.splitlines():
        if line.startswith("RATE"):
            return float(line.split()[1])
    print(f"ManiSkill3 run failed: {result.stderr.strip().splitlines()[-1:] or result.returncode}")
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="PickCube")
    parser.add_argument("--sizes", default="1,16,64,256")
    parser.add_argument("--repeats", type=int, default=3, help="runs per rate; the median is reported")
    parser.add_argument("--out", default="benchmarks/results/sim_throughput.json")
    parser.add_argument("--maniskill-python", default=os.environ.get("MANISKILL_PYTHON"),
                        help="python of a venv with mani-skill installed (plus VK_ICD_FILENAMES for lavapipe)")
    parser.add_argument("--render-envs", type=int, default=256, help="worlds drawn per call in the rendering table")
    parser.add_argument("--render-only", action="store_true", help="skip the env-steps/s table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = {"task": args.task, "cpu_count": os.cpu_count()}
    if not args.render_only:
        result.update(step_rates(args))
    result["render_rows"] = render_rows(args.task, args.render_envs, args.repeats)
    print_table(f"{args.task} rendering, {args.render_envs} worlds per call, frames/s (a frame: one camera of one "
                f"world), {os.cpu_count()} CPU cores",
                ["size", "cameras", "renderer", "frames_per_s", "vs_reference", "pixels_differing", "mean_abs_diff"],
                result["render_rows"])
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"\nwrote {args.out}")


def step_rates(args) -> dict:
    """The env-steps/s table (printed) and its rows."""
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        state_steps = max(50, 2000 // n)  # at least one full PickCube episode and 2,000 env-steps
        rgb_steps = max(5, 400 // n)
        pairs = [ours_and_raw(args.task, n, state_steps) for _ in range(args.repeats)]
        row = {
            "num_envs": n,
            "ours_state": statistics.median(p[0] for p in pairs),
            "ours_rgb64": statistics.median(ours_rgb(args.task, n, rgb_steps) for _ in range(args.repeats)),
            **{f"ours_rgb64_{quality}": statistics.median(ours_rgb(args.task, n, rgb_steps, quality)
                                                          for _ in range(args.repeats))
               for quality in ("fast", "fastest")},
            "raw_mujoco_bound": statistics.median(p[1] for p in pairs),
            "gym_sync_vector": statistics.median(gym_sync(args.task, n, max(10, 2000 // n))
                                                 for _ in range(args.repeats)),
        }
        row["state_vs_raw"] = row["ours_state"] / row["raw_mujoco_bound"]
        row["state_vs_gym_sync"] = row["ours_state"] / row["gym_sync_vector"]
        rows.append(row)
        print(f"done num_envs={n}", flush=True)
    # ManiSkill's CPU backend runs one env per process (num_envs > 1 needs AsyncVectorEnv processes).
    maniskill_rates = {n: maniskill(args.maniskill_python, n) for n in (1,)}
    best_maniskill = max((r for r in maniskill_rates.values() if r), default=None)
    for row in rows:
        row["maniskill_state"] = maniskill_rates.get(row["num_envs"])
        row["state_vs_maniskill_best"] = row["ours_state"] / best_maniskill if best_maniskill else None
    print_table(f"{args.task} env-steps/s (control 20 Hz, 10 substeps of 5 ms; rgb64: the front camera at 64 px, "
                f"render quality full unless named), "
                f"{os.cpu_count()} CPU cores",
                ["num_envs", "ours_state", "ours_rgb64", "ours_rgb64_fast", "ours_rgb64_fastest", "raw_mujoco_bound",
                 "gym_sync_vector",
                 "maniskill_state", "state_vs_raw", "state_vs_gym_sync", "state_vs_maniskill_best"], rows)
    return {"rows": rows, "maniskill_state_by_processes": maniskill_rates}

if __name__ == "__main__":
    main()

"""LIBERO through env.backend=libero: every suite loads and resets, speed against raw robosuite, a scripted table.

Run: python benchmarks/libero_suites.py [--states 5] [--speed-steps 200] [--expert-states 5] [--out ...json]
1. Load: every task of the five suites is built and reset to its first --states fixed states (50: all), then
   stepped; the table gives per suite the tasks, resets and failures, build and reset seconds.
2. Speed (libero_spatial task 0, one env): env-steps/s and seconds per reset without cameras and with the two
   cameras at 128 and 256 px, against the same robosuite env stepped raw (the bound: no wrapper) and reset as
   LeRobot's env resets it (reset, fixed state, 10 settle steps, every step rendering its cameras).
3. The scripted pick-and-place on libero_object: the per-task success table over --expert-states fixed states.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.results_io import write_results  # noqa: E402
from embodied.rollout.task_table import format_table, task_table  # noqa: E402
from sims import make_env  # noqa: E402
from sims.libero.env import make_robosuite_env  # noqa: E402
from sims.libero.scripted import LiberoPickPlaceExpert  # noqa: E402
from sims.libero.suites import SETTLE_ACTION, SETTLE_STEPS, SUITE_MAX_STEPS, load_suite  # noqa: E402


def load_every_task(suite: str, states: int) -> dict:
    """Build, reset to the first ``states`` fixed states and step every task of ``suite``."""
    tasks, failures, build, reset = load_suite(suite), [], [], []
    for task in tasks:
        env = None
        try:
            started = time.perf_counter()
            env = make_env("libero", task=f"{suite}/{task.index}", num_envs=1)
            env.reset(seed=0, reset_ids=[0])
            build.append(time.perf_counter() - started)
            started = time.perf_counter()
            for k in range(1, states):
                env.reset(seed=0, reset_ids=[k])
            reset.append((time.perf_counter() - started) / max(states - 1, 1))
            for _ in range(5):
                env.step(torch.zeros(1, 7))
        except Exception as error:  # a task that does not load is a row of the table, not the end of the run
            failures.append(f"{task.index}: {type(error).__name__}: {error}")
        finally:
            if env is not None:
                env.close()
    return {"suite": suite, "tasks": len(tasks), "resets": len(tasks) * states, "failures": failures,
            "build_and_first_reset_s": float(np.mean(build)) if build else None,
            "reset_s": float(np.mean(reset)) if reset else None}


def raw_robosuite(task, cameras: tuple, size: int, steps: int) -> tuple[float, float]:
    """(steps/s, seconds per LeRobot-style reset) of the robosuite env a slot holds, driven directly."""
    env = make_robosuite_env(task, cameras, (size, size))
    started = time.perf_counter()
    for k in range(3):
        env.reset()
        env.set_init_state(task.init_states[k])
        for _ in range(SETTLE_STEPS):
            env.step(SETTLE_ACTION)
    reset_s = (time.perf_counter() - started) / 3
    started = time.perf_counter()
    for _ in range(steps):
        env.step(np.zeros(7))
    rate = steps / (time.perf_counter() - started)
    env.close()
    return rate, reset_s


def ours(cameras: tuple, size: int, steps: int) -> tuple[float, float]:
    """(env-steps/s, seconds per reset) of env.backend=libero on libero_spatial task 0."""
    env = make_env("libero", task="libero_spatial/0", num_envs=1, cameras=cameras, image_size=(size, size))
    env.reset(seed=0, reset_ids=[0])
    started = time.perf_counter()
    for k in range(1, 4):
        env.reset(seed=0, reset_ids=[k])
    reset_s = (time.perf_counter() - started) / 3
    zero = torch.zeros(1, 7)
    started = time.perf_counter()
    for _ in range(steps):
        env.step(zero)
    rate = steps / (time.perf_counter() - started)
    env.close()
    return rate, reset_s


def scripted_table(states: int) -> list[dict]:
    """The scripted pick-and-place over libero_object's 10 tasks x ``states`` fixed states (10 envs at once)."""
    env = make_env("libero", task="libero_object", num_envs=10, autoreset=False)
    expert = LiberoPickPlaceExpert(env.num_envs)
    episodes = []
    for wave in range(states):
        obs, _ = env.reset(seed=0, reset_ids=list(range(10 * wave, 10 * wave + 10)))
        done = success = torch.zeros(10, dtype=torch.bool)
        while not done.all():
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            success, done = success | (info["success"] & ~done), done | terminated | truncated
        episodes += [{"success_once": bool(s)} for s in success]
    names = [f"{t.index}: {t.instruction}" for t in env.episode_task(range(10 * states))]
    env.close()
    return task_table(episodes, names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--states", type=int, default=5, help="fixed states reset per task in the load sweep")
    parser.add_argument("--speed-steps", type=int, default=200)
    parser.add_argument("--expert-states", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/libero_suites.json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    loads = []
    for suite in SUITE_MAX_STEPS:
        loads.append(load_every_task(suite, args.states))
        row = loads[-1]
        seconds = (f"build+reset {row['build_and_first_reset_s']:.2f} s  reset {row['reset_s']:.3f} s"
                   if row["reset_s"] is not None else "no task loaded")
        print(f"{suite:<15} tasks {row['tasks']:>3}  resets {row['resets']:>5}  failures {len(row['failures'])}  "
              f"{seconds}", flush=True)

    task = load_suite("libero_spatial/0")[0]
    speed = []
    print(f"\n{'cameras':<22} {'ours steps/s':>12} {'raw steps/s':>11} {'ratio':>6} {'ours reset s':>12} "
          f"{'LeRobot-style reset s':>21}")
    for cameras, size in [((), 0), (("image", "image2"), 128), (("image", "image2"), 256)]:
        rate, reset_s = ours(cameras, size or 64, args.speed_steps)
        raw_rate, raw_reset = raw_robosuite(task, cameras, size or 64, args.speed_steps)
        label = f"{'+'.join(cameras) or 'none'}" + (f" {size} px" if size else "")
        speed.append({"cameras": label, "steps_per_s": rate, "raw_steps_per_s": raw_rate, "reset_s": reset_s,
                      "lerobot_style_reset_s": raw_reset})
        print(f"{label:<22} {rate:>12.1f} {raw_rate:>11.1f} {rate / raw_rate:>6.2f} {reset_s:>12.3f} "
              f"{raw_reset:>21.3f}", flush=True)

    rows = scripted_table(args.expert_states)
    title = f"scripted pick-and-place, libero_object, fixed states 0..{args.expert_states - 1}"
    print("\n" + format_table(rows, title))
    write_results(args.out, {"load": loads, "speed": speed, "scripted_libero_object": rows,
                             "states_per_task": args.states, "speed_steps": args.speed_steps})


if __name__ == "__main__":
    main()

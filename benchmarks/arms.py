"""Every arm model against its published kinematics, and the scripted experts with every arm on every task.

Run: python benchmarks/arms.py [--arms panda ur5e xarm7 xarm6] [--episodes 32] [--planner-episodes 16]
Per arm: the largest distance between the simulated flange and an independent DH computation over 200 random
configurations; success of the waypoint expert (end-effector control) on each task, and of the planner expert
(IK + Informed RRT*, joint control) on PickCube, from the same reset seeds for every arm. The Panda is the
reference the other arms are compared with. Writes benchmarks/results/arms.json.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from results_io import write_results  # noqa: E402

from embodied.data.demos import make_expert  # noqa: E402
from sims import make_env  # noqa: E402
from sims.arms import get_arm  # noqa: E402
from sims.mujoco.kinematics import ArmKinematics  # noqa: E402

TASKS = ("Reach", "PushCube", "PickCube", "StackCube", "LangPlaceCube")


def flange_error_mm(name: str, samples: int = 200) -> float:
    """Largest |simulated flange - DH flange| (mm) over random joint configurations within the limits."""
    arm = get_arm(name)
    kinematics = ArmKinematics(arm)
    hand = kinematics.model.body("hand").id
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(samples):
        q = rng.uniform(np.maximum(arm.joint_low, -np.pi), np.minimum(arm.joint_high, np.pi))
        kinematics._set(q)
        simulated = kinematics.data.xpos[hand] - np.asarray(arm.base_pos)
        worst = max(worst, float(np.abs(simulated - arm.flange_pose(q)[:3, 3]).max()))
    return worst * 1000


def expert_success(arm: str, task: str, expert: str, episodes: int) -> float:
    """success_once of the expert over ``episodes`` (waves of 16 from reset seeds 0, 1, ...)."""
    controller = "joint_delta" if expert == "planner" else "ee_delta_pos"
    env = make_env(task=task, num_envs=16, arm=arm, controller=controller, autoreset=False)
    wins = []
    for wave in range(max(1, episodes // 16)):
        env.reset(seed=wave)
        policy = make_expert(env, expert, wave)
        success = np.zeros(16, dtype=bool)
        for _ in range(env.max_episode_steps):
            _, _, _, _, info = env.step(policy.act())
            success |= np.asarray(info["success"])
        wins += success.tolist()
    env.close()
    return float(np.mean(wins))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", nargs="+", default=["panda", "ur5e", "xarm7", "xarm6"])
    parser.add_argument("--episodes", type=int, default=32, help="waypoint-expert episodes per arm and task")
    parser.add_argument("--planner-episodes", type=int, default=16, help="planner episodes per arm (PickCube)")
    parser.add_argument("--out", default="benchmarks/results/arms.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for arm in args.arms:
        start = time.perf_counter()
        row = {"arm": arm, "joints": get_arm(arm).dof, "flange_error_mm": flange_error_mm(arm)}
        row |= {task: expert_success(arm, task, "waypoints", args.episodes) for task in TASKS}
        row["PickCube_planner"] = expert_success(arm, "PickCube", "planner", args.planner_episodes)
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        print(f"{arm}: done in {row['seconds']:.0f} s", flush=True)
    header = ["arm", "joints", "flange_error_mm", *TASKS, "PickCube_planner"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{row[k]:.3g}" if isinstance(row[k], float) else str(row[k]) for k in header) + " |")
    write_results(args.out, {"episodes": args.episodes, "planner_episodes": args.planner_episodes, "rows": rows})


if __name__ == "__main__":
    main()

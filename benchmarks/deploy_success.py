"""A trained policy deployed on the sim twin against the same policy evaluated in simulation, scene for scene.

Run: python benchmarks/deploy_success.py --policy runs/vla_learning/PickCube_vla_s1/final_policy [--episodes 64]
Deployment goes through ``embodied-deploy``'s own session (``run_deployment``): the sim twin's cameras and
joint readings, the ``ee_delta_pos`` -> joint mapping, the safety guard, the fixed-rate loop, stopping at the
first success. Scene e of the twin is drawn from seed ``--seed + e``; the simulation arm runs the same scenes in
the batched env (``ee_delta_pos`` controller, the task's time limit) with the policy's deterministic actions.
Prints success in both and the difference; writes benchmarks/results/deploy_success.json.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from results_io import write_results  # noqa: E402

from embodied.deploy.config import DeployConfig  # noqa: E402
from embodied.deploy.session import run_deployment  # noqa: E402
from embodied.rollout.evaluate import evaluate  # noqa: E402
from policies import from_pretrained  # noqa: E402
from sims import make_env  # noqa: E402


def sim_success(policy, env, seeds: list[int]) -> list[bool]:
    """success_once of each scene ``reset(seed=s)`` (reset id 0 of seed s, as the twin draws it), by the
    project's deterministic evaluation run one episode per seed."""
    return [evaluate(policy, env, 1, seed)[0]["success_once"] == 1.0 for seed in seeds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", required=True, help="a save_pretrained directory (e.g. a run's final_policy)")
    parser.add_argument("--task", default="PickCube")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="scene e is drawn from seed + e")
    parser.add_argument("--safety", nargs="*", default=[], metavar="LIMIT=VALUE",
                        help="SafetyLimits overrides, e.g. max_joint_velocity=2.0 (default: the guard's own limits)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/deploy_success.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    policy = from_pretrained(args.policy)
    cameras = tuple(getattr(policy, "cameras", ()))
    env = make_env(task=args.task, num_envs=1, cameras=cameras, autoreset=False)
    max_steps, control_hz = env.max_episode_steps, float(env.control_hz)
    safety = {key: float(value) for key, _, value in (item.partition("=") for item in args.safety)}
    seeds = [args.seed + e for e in range(args.episodes)]
    in_sim = sim_success(policy, env, seeds)
    env.close()
    cfg = DeployConfig(policy_path=args.policy, controller="ee_delta_pos", control_hz=control_hz,
                       max_steps=max_steps, episodes=args.episodes, estop_keys="", safety=safety,
                       robot={"type": "sim_twin", "task": args.task, "cameras": list(cameras),
                              "image_size": [64, 64], "seed": args.seed})
    reports = run_deployment(cfg)
    deployed = [r.outcome == "success" for r in reports]
    outcomes = sorted({r.outcome.split(":")[0] for r in reports})
    sim_rate, deploy_rate = sum(in_sim) / len(in_sim), sum(deployed) / len(deployed)
    agree = sum(a == b for a, b in zip(in_sim, deployed)) / len(deployed)
    print(f"\n{args.task}, {args.policy}, {args.episodes} scenes (seeds {seeds[0]}..{seeds[-1]}), "
          f"safety overrides {safety or 'none'}")
    print("| arm | success | episodes |\n|---|---|---|")
    print(f"| simulation (batched env, ee_delta_pos) | {sim_rate:.3f} | {len(in_sim)} |")
    print(f"| embodied-deploy on the sim twin (guard, joint mapping, {control_hz:g} Hz) | {deploy_rate:.3f} | "
          f"{len(deployed)} |")
    print(f"difference {100 * (deploy_rate - sim_rate):+.1f} points; same outcome in {agree:.0%} of scenes; "
          f"deploy outcomes {outcomes}")
    write_results(args.out, {"task": args.task, "policy": args.policy, "safety": safety, "seeds": seeds,
                             "sim": in_sim, "deploy": deployed, "deploy_outcomes": [r.outcome for r in reports],
                             "sim_success": sim_rate, "deploy_success": deploy_rate})


if __name__ == "__main__":
    main()

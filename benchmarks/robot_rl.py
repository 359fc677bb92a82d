"""Robot RL through the actor-learner loop on the sim twin: SAC from scratch, with and without a person's help.

Run: python benchmarks/robot_rl.py [--task Reach] [--seeds 1 2] [--env-steps 6000] [--control-hz 100]
The twin stands in for the arm (``real_robot.sim_twin``, the robot's own joint-target interface behind the safety
guard), driven at ``--control-hz`` in real time by the actor thread of ``embodied.robot_rl.actor_learner`` while the
SAC learner (``algo=sac policy=tanh_mlp``, the shipped defaults, 500 random steps) updates beside it. Success is the
twin's task check, the reward sparse (1 on success, which ends the episode). Variants:
- ``sac``: the policy alone;
- ``sac_person``: the scripted expert stands in for a person who takes over from step 20 of each of the first 30
  episodes (HIL-SERL's interventions), those steps also stored as demonstrations (``algo.demo_ratio`` 0.5).
The twin advances 50 ms of simulated time per command (its 20 Hz), whatever the loop's rate. Per run: the episodes
(assisted ones counted) until the policy's own success over its last 20 unassisted episodes first reached 50% and
90%, that rate at the end, the final policy's success in simulation (64 episodes, deterministic, eval seed 10000),
the share of steps the person drove, the robot loop's period p50/p99 and the learner's updates. Writes
benchmarks/results/robot_rl.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from results_io import write_results  # noqa: E402

from embodied.algorithms.registry import ALGORITHMS  # noqa: E402
from embodied.config.schema import TrainConfig  # noqa: E402
from embodied.deploy.mapping import ActionMapper, robot_kinematics  # noqa: E402
from embodied.deploy.session import make_observer  # noqa: E402
from embodied.robot_rl.actor_learner import run_actor_learner  # noqa: E402
from embodied.robot_rl.env import RobotEnv  # noqa: E402
from embodied.robot_rl.intervention import Intervention  # noqa: E402
from embodied.rollout.evaluate import evaluate  # noqa: E402
from embodied.runner.builders import build_env  # noqa: E402
from embodied.runner.offpolicy import OffPolicyTrainer  # noqa: E402
from real_robot.safety import SafetyGuard, SafetyLimits  # noqa: E402
from real_robot.sim_twin import SimTwinRobot  # noqa: E402
from real_robot.teleop.scripted import ScriptedDevice  # noqa: E402

WINDOW = 20  # episodes in the rolling success rate


def trainer_for(task: str, seed: int, out: str, with_person: bool) -> OffPolicyTrainer:
    """SAC with the shipped defaults on one env of ``task`` (the learner's specs and the final evaluation)."""
    cfg = TrainConfig()
    cfg.algo = ALGORITHMS.lookup("sac").config()
    cfg.policy.name = "tanh_mlp"
    cfg.env.task, cfg.env.num_envs = task, 1
    cfg.algo.learning_starts = 500
    cfg.algo.demo_ratio = 0.5 if with_person else 0.0
    cfg.experiment.seed, cfg.experiment.output_dir, cfg.experiment.progress = seed, out, False
    return OffPolicyTrainer(cfg)


def robot_env(robot, control_hz: float, max_episode_steps: int, with_person: bool) -> RobotEnv:
    """The twin behind the default safety guard (limits per twin period); with a stand-in person for the first 30
    episodes."""
    kinematics = robot_kinematics(robot)
    guard = SafetyGuard(robot, SafetyLimits(), control_dt=1.0 / robot.control_hz,
                        forward_kinematics=kinematics.tool_position)
    env = RobotEnv(robot, guard, ActionMapper("ee_delta_pos", kinematics), make_observer(robot, control_hz, [], "",
                   kinematics), lambda robot_obs: robot.task_success, max_episode_steps, control_hz=control_hz)
    if with_person:
        device = ScriptedDevice()
        device.connect()
        env.intervention = Intervention(device, "ee_delta_pos", lambda step, obs: env.episodes <= 30 and step >= 20)
    return env


def episodes_to(successes: list[bool], assisted: list[bool], rate: float) -> int | None:
    """The episode (counting every episode, assisted ones too) at which the policy's own success rate over its last
    ``WINDOW`` unassisted episodes first reaches ``rate``."""
    own = []
    for episode, (success, helped) in enumerate(zip(successes, assisted), start=1):
        if not helped:
            own.append(success)
            if len(own) >= WINDOW and np.mean(own[-WINDOW:]) >= rate:
                return episode
    return None


def run(task: str, seed: int, variant: str, env_steps: int, control_hz: float) -> dict:
    """One variant's run on the twin; its row of the table."""
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as out:
        trainer = trainer_for(task, seed, out, variant == "sac_person")
        robot = SimTwinRobot(task=task, cameras=(), seed=seed, control_hz=20.0)
        robot.connect()
        try:
            env = robot_env(robot, control_hz, trainer.env.max_episode_steps, variant == "sac_person")
            start = time.perf_counter()
            report = run_actor_learner(trainer, env, env_steps, seed=seed)
            seconds = time.perf_counter() - start
        finally:
            robot.disconnect()
        eval_env = build_env(trainer.cfg, 16, autoreset=False)
        final, _ = evaluate(trainer.policy, eval_env, 64, 10000)
        eval_env.close()
    successes, assisted = report.episode_successes, report.episode_assisted
    own = [s for s, helped in zip(successes, assisted) if not helped]
    return {"task": task, "seed": seed, "variant": variant, "env_steps": report.env_steps, "updates": report.updates,
            "episodes": len(successes), "assisted_episodes": int(sum(assisted)),
            "episodes_to_50": episodes_to(successes, assisted, 0.5),
            "episodes_to_90": episodes_to(successes, assisted, 0.9),
            "last_window": float(np.mean(own[-WINDOW:])) if own else float("nan"),
            "final_sim_success": final["success_once"], "intervention_rate": report.intervention_rate,
            "seconds": seconds, **report.timing}


def main() -> None:
    """Every variant and seed; print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="Reach")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--env-steps", type=int, default=6000)
    parser.add_argument("--control-hz", type=float, default=100.0)
    parser.add_argument("--variants", nargs="+", default=["sac", "sac_person"], choices=["sac", "sac_person"])
    parser.add_argument("--out", default="benchmarks/results/robot_rl.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [run(args.task, seed, variant, args.env_steps, args.control_hz)
            for variant in args.variants for seed in args.seeds]
    print(f"\n{args.task} on the sim twin, SAC through the actor-learner loop at {args.control_hz:g} Hz, "
          f"{args.env_steps} robot steps per run; the policy's own success over its last {WINDOW} unassisted episodes")
    print("| variant | seed | episodes (assisted) | episodes to 50% | to 90% | last 20 | sim success (64) | "
          "person's steps | loop p50 / p99 ms | updates | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['seed']} | {r['episodes']} ({r['assisted_episodes']}) | {r['episodes_to_50']} | "
              f"{r['episodes_to_90']} | "
              f"{r['last_window']:.2f} | {r['final_sim_success']:.3f} | {r['intervention_rate']:.3f} | "
              f"{r['period_p50_ms']:.1f} / {r['period_p99_ms']:.1f} | {r['updates']} | {r['seconds']:.0f} |")
    write_results(args.out, {"task": args.task, "env_steps": args.env_steps, "control_hz": args.control_hz,
                             "window": WINDOW, "runs": rows})


if __name__ == "__main__":
    main()

"""On-policy distillation (VLA-OPD) of an RL-trained pixel VLA into a smaller pixel VLA, against SFT of the same
student on the teacher's rollouts.

Run: python benchmarks/vla_opd.py --teacher <dir> [--task Reach] [--env-steps 65536] [--rollouts 64]
         [--sft-steps 1500] [--seeds 1 2] [--root /tmp/vla_opd]   (about 15 minutes per seed on 2 CPU cores)
The teacher is a ``save_pretrained`` pixel VLA, e.g. the PPO policy of tests/test_pixel_vla_rl.py's recipe.
1. The teacher rolls out ``--rollouts`` episodes with its deterministic actions (reset seed 0, every episode kept,
   success or not), saved as a LeRobot dataset with its cameras at its image size.
2. Per seed, the student (policy=vla with ``STUDENT``'s fusion decoder, the teacher's cameras and image size) is
   trained from scratch
   * by OPD (``algo=opd algo.teacher=<teacher>``: the student rolls out, the teacher scores its actions, the student
     minimises the reverse KL; no env reward) for ``--env-steps`` env-steps;
   * by SFT on the teacher's rollouts for ``--sft-steps`` steps.
3. Teacher and students: success_once over the same 64 episodes (eval seed 10000), the trained parameters that act
   (frozen towers, the value head and the auxiliary task-state head aside), and the median batch-1 latency of one
   action chunk (``deterministic_action``, one torch thread).
A folder under ``--root`` that holds a finished run of the same settings (its name carries them) is read, not run
again. Writes benchmarks/results/vla_opd.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from results_io import write_results  # noqa: E402
from vla_learning import inference_ms, success  # noqa: E402

from embodied.data.demos import REWARD, env_features, frame_of  # noqa: E402
from embodied.data.writer import LeRobotDatasetWriter  # noqa: E402
from policies import from_pretrained  # noqa: E402
from sims import make_env  # noqa: E402

STUDENT = ["policy.fusion.hidden_size=64", "policy.fusion.layers=1", "policy.fusion.heads=2",
           "policy.fusion.intermediate_size=128"]  # the teacher's fusion decoder is 128 wide, 2 layers
EVAL_SEED = 10000


@torch.no_grad()
def record_teacher_rollouts(teacher, env, episodes: int, out: str) -> float:
    """``episodes`` deterministic teacher episodes (waves of env.num_envs from reset seed 0) into a LeRobot dataset
    at ``out`` (written beside it and moved there when whole); returns their success rate."""
    partial = out + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    writer = LeRobotDatasetWriter.create(partial, fps=int(env.control_hz), features=env_features(env))
    teacher.eval()
    successes = []
    for wave in range(0, episodes, env.num_envs):
        obs, _ = env.reset(seed=0, reset_ids=torch.arange(wave, wave + env.num_envs))
        teacher.reset()
        frames = [[] for _ in range(env.num_envs)]
        success_once = torch.zeros(env.num_envs, dtype=torch.bool)
        done = torch.zeros(env.num_envs, dtype=torch.bool)
        while not done.all():
            action = teacher.select_action(obs)  # [N, A], the chunk executed step by step
            step = [(frame_of(obs, action, i), obs["instruction"][i]) for i in range(env.num_envs)]
            obs, reward, term, trunc, info = env.step(action)
            for i in torch.nonzero(~done).flatten().tolist():  # the reward of the step that starts at the frame
                frame, instruction = step[i]
                frames[i].append(({**frame, REWARD: np.array([float(reward[i])], dtype=np.float32)}, instruction))
            success_once |= info["success"] & ~done
            done |= term | trunc
        for i in range(min(env.num_envs, episodes - wave)):
            for frame, instruction in frames[i]:
                writer.add_frame(frame, instruction)
            writer.save_episode(extra={"scene/seed": 0, "scene/reset_id": wave + i})
            successes.append(bool(success_once[i]))
    os.rename(partial, out)
    return sum(successes) / len(successes)


def train_student(root: str, name: str, seed: int, task: str, size: int, cameras: list[str],
                  overrides: list[str]) -> str:
    """A student run of ``embodied-train`` (kept when it finished before); its final policy's directory."""
    out = os.path.join(root, f"{name}_s{seed}")  # ``name`` carries the run's settings
    if not os.path.exists(os.path.join(out, "summary.json")):
        subprocess.run(["embodied-train", "policy=vla", f"env.task={task}", f"policy.cameras=[{','.join(cameras)}]",
                        f"env.image_size=[{size},{size}]", *STUDENT, *overrides, f"experiment.seed={seed}",
                        "experiment.eval_episodes=64", "experiment.checkpoint_interval=0", "experiment.progress=false",
                        f"experiment.output_dir={out}"], check=True)
    return os.path.join(out, "final_policy")


def measure(policy_dir: str, env) -> dict:
    """Success over the evaluation's 64 episodes, acting parameters and chunk latency of one saved policy."""
    policy = from_pretrained(policy_dir)
    return {"success": success(policy, env, 64, EVAL_SEED)["success_once"],
            "acting_parameters": acting_parameters(policy), "chunk_ms": inference_ms(policy, env)}


def acting_parameters(policy) -> int:
    """Trained parameters that choose actions: frozen towers (MiniLM), the value head and the auxiliary task-state
    head left out."""
    return sum(p.numel() for name, p in policy.named_parameters()
               if p.requires_grad and not name.startswith(("value_head.", "task_state_head.")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="the teacher's save_pretrained directory")
    parser.add_argument("--task", default="Reach")
    parser.add_argument("--env-steps", type=int, default=65536, help="OPD's env-steps per student")
    parser.add_argument("--rollouts", type=int, default=64, help="teacher episodes SFT trains on")
    parser.add_argument("--sft-steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--root", default="/tmp/vla_opd")
    parser.add_argument("--out", default="benchmarks/results/vla_opd.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    teacher = from_pretrained(args.teacher)
    cameras = list(teacher.cameras)
    size = int(teacher.config["trained_with"]["image_size"][0])
    env = make_env(task=args.task, num_envs=32, cameras=tuple(cameras), image_size=(size, size), autoreset=False)
    rollouts = os.path.join(args.root, f"teacher_rollouts_{args.rollouts}")
    rollout_success = None  # stays None when an earlier run recorded them
    if not os.path.exists(os.path.join(rollouts, "meta", "info.json")):
        rollout_success = record_teacher_rollouts(teacher, env, args.rollouts, rollouts)
    rows = [{"student": "teacher", "seed": None, **measure(args.teacher, env)}]
    for seed in args.seeds:
        opd = train_student(args.root, f"opd_{args.env_steps}", seed, args.task, size, cameras, [
            "algo=opd", f"algo.teacher={args.teacher}", "env.num_envs=32", "algo.rollout_steps=16",
            f"experiment.total_env_steps={args.env_steps}", "experiment.eval_interval=8"])
        sft = train_student(args.root, f"sft_{args.sft_steps}", seed, args.task, size, cameras, [
            "algo=sft", f"data.paths=[{rollouts}]", f"algo.sft_steps={args.sft_steps}", "algo.learning_rate=1e-3"])
        rows += [{"student": "OPD", "seed": seed, **measure(opd, env)},
                 {"student": "SFT on the teacher's rollouts", "seed": seed, **measure(sft, env)}]
    env.close()
    teacher_success = rows[0]["success"]
    print(f"\n{args.task}, teacher {args.teacher}; OPD {args.env_steps:,} env-steps, SFT {args.sft_steps} steps on "
          f"{args.rollouts} teacher episodes; 64 evaluation episodes (eval seed {EVAL_SEED}) per rate")
    print("| policy | seed | success | of the teacher's | acting parameters | ms per chunk |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        share = r["success"] / teacher_success if teacher_success else float("nan")
        seed = "-" if r["seed"] is None else r["seed"]
        print(f"| {r['student']} | {seed} | {r['success']:.3f} | {share:.0%} | {r['acting_parameters']:,} | "
              f"{r['chunk_ms']:.1f} |")
    write_results(args.out, {"task": args.task, "teacher": args.teacher, "env_steps": args.env_steps,
                             "rollouts": args.rollouts, "rollout_success": rollout_success,
                             "sft_steps": args.sft_steps, "student": STUDENT, "rows": rows})


if __name__ == "__main__":
    main()

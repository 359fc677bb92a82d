"""``embodied-record-demos``: record scripted-expert demonstrations of a task into a LeRobot v3.0 dataset.

Examples:
  embodied-record-demos                                        # 50 PickCube episodes, front camera 64x64
  embodied-record-demos --task StackCube --episodes 200 --out demos/stack_cube --cameras front wrist side
  embodied-record-demos --out demos/pick_cube --cameras front wrist side --resume  # append (same cameras)
  embodied-record-demos --task StackCube --expert planner      # IK + joint-space Informed RRT* (joint_delta actions)
  embodied-record-demos --suite tabletop_goal --episodes 400 --frames-after-success 10 --cameras front wrist
                                                               # the goal family's 8 training tasks, 50 episodes each
Only successful episodes are kept unless --keep-failures. Train on the result with
  embodied-train algo=sft env=pick_cube data.paths=[demos/pick_cube] experiment.name=PickCube_sft
"""

from __future__ import annotations

import argparse
import os
import sys

from embodied.data import lerobot_format as fmt
from embodied.data.demos import EXPERTS, REWARD, env_features, next_wave, record_expert_demos
from embodied.data.writer import LeRobotDatasetWriter


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="PickCube", help="task name (Reach, PushCube, PickCube, StackCube, ...)")
    parser.add_argument("--episodes", type=int, default=50, help="episodes to save")
    parser.add_argument("--out", default=None, help="dataset directory (default: demos/<task>)")
    parser.add_argument("--cameras", nargs="*", default=["front"], help="cameras to record as videos")
    parser.add_argument("--image-size", type=int, nargs=2, default=[64, 64], metavar=("H", "W"))
    parser.add_argument("--render-quality", default="full",
                        help="full (MuJoCo's default look) | fast | fastest: as env.render_quality, which the runs "
                             "that train on these demos should match")
    parser.add_argument("--num-envs", type=int, default=16, help="worlds simulated side by side")
    parser.add_argument("--expert", choices=EXPERTS, default="waypoints",
                        help="waypoints: scripted end-effector expert; planner: IK + joint-space Informed RRT*")
    parser.add_argument("--controller", default=None,
                        help="action space recorded (default: ee_delta_pos, joint_delta for --expert planner)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--domain", default="sim",
                        help="sim, shifted (the held-out \"real\" domain) or shifted_twin (its digital twin)")
    parser.add_argument("--arm", default="panda", help="arm model (sims/arms/: panda, ur5e, xarm7, xarm6)")
    parser.add_argument("--resume", action="store_true",
                        help="append to an existing dataset at --out, in scenes after the last one saved")
    parser.add_argument("--keep-failures", action="store_true", help="also save episodes the expert failed")
    parser.add_argument("--suite", default=None,
                        help="record the tasks of a TabletopSuite suite (tabletop, tabletop_object, ...) instead of "
                             "--task: episode j runs task j %% T")
    parser.add_argument("--split", default="train", help="the suite's split (train | paraphrase | composition)")
    parser.add_argument("--frames-after-success", type=int, default=None, metavar="K",
                        help="end each episode K frames after it first succeeds (default: run to the episode limit; "
                             "a suite's limit fits its longest task)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    """Console entry point."""
    args = parse_args(argv)
    if args.episodes < 1:
        sys.exit(f"--episodes must be >= 1, got {args.episodes}")
    os.environ.setdefault("MUJOCO_GL", "egl")
    from sims import make_env

    if args.frames_after_success is not None and args.frames_after_success < 0:
        sys.exit(f"--frames-after-success must be >= 0, got {args.frames_after_success}")
    task = "TabletopSuite" if args.suite else args.task
    suite = {"suite": args.suite, "split": args.split} if args.suite else {}
    out = args.out or os.path.join("demos", (args.suite or args.task).lower())
    controller = args.controller or ("joint_delta" if args.expert == "planner" else "ee_delta_pos")
    try:
        env = make_env(task=task, num_envs=args.num_envs, controller=controller, cameras=tuple(args.cameras),
                       image_size=tuple(args.image_size), autoreset=False, domain=args.domain, arm=args.arm,
                       terminate_on_success=False, render_quality=args.render_quality,
                       **suite)  # (--frames-after-success ends episodes instead)
    except (KeyError, ValueError) as error:  # an unknown task, suite, split or render quality
        sys.exit(f"embodied-record-demos: {str(error).strip(chr(34))}")
    features = env_features(env)
    fps = float(env.control_hz)
    if args.resume and os.path.isfile(os.path.join(out, "meta", "info.json")) and \
            REWARD not in fmt.load_info(out)["features"]:
        del features[REWARD]  # a dataset recorded before rewards were goes on without them
    try:
        if args.resume:
            writer = LeRobotDatasetWriter.resume(out, fps=fps, features=features)
        else:
            writer = LeRobotDatasetWriter.create(out, fps=fps, features=features, robot_type=f"embodied_sim_{args.arm}")
    except (FileExistsError, FileNotFoundError, ValueError) as error:  # a taken path, nothing to resume, a mismatch
        sys.exit(f"embodied-record-demos: {error}")
    try:
        first_wave = next_wave(writer.episode_rows, args.seed) if args.resume else 0  # fresh scenes on resume
        counts = record_expert_demos(env, writer, args.episodes, seed=args.seed, first_wave=first_wave,
                                     only_successes=not args.keep_failures, expert=args.expert,
                                     frames_after_success=args.frames_after_success)
    except ValueError as error:  # e.g. the planner with an end-effector controller
        sys.exit(f"embodied-record-demos: {error}")
    print(f"saved {counts['saved']} of {counts['attempted']} attempted episodes to {out} "
          f"({writer.num_episodes} episodes, {writer.num_frames} frames in the dataset)")


if __name__ == "__main__":
    main()

"""``embodied-eval``: evaluate a saved policy and print its per-task success table (the numbers papers report).

Examples:
  embodied-eval                                     # after `make train`: runs/Reach_ppo/final_policy on Reach
  embodied-eval experiment.name=Reach_ppo experiment.eval_episodes=200 experiment.eval_seed=7  # other episodes
  embodied-eval experiment=vla_sft_suite data.paths=[demos/tabletop] env.split=paraphrase \\
      experiment.eval_episodes=210  # the tabletop suite's held-out wordings: 10 episodes per task
  embodied-eval experiment.name=libero_object_ppo env=libero env.task=libero_object \\
      experiment.eval_episodes=100 experiment.eval_num_envs=10  # LIBERO-Object: 10 episodes per task
Takes embodied-train's settings (`embodied-eval --help` shows them): the policy is ``init_from`` (default
runs/<experiment.name>/final_policy), the env is ``env.*``, and episode j starts from reset id j of
``experiment.eval_seed``. On a LIBERO suite of T tasks episode j runs task j % T from its fixed state j // T (modulo
the task's number of states), so 10 x T episodes run every task from its states 0..9, as LeRobot evaluates; run them
on experiment.eval_num_envs=T envs (each holds a robosuite env: 0.3 GB, 0.9 GB with cameras). Writes
<policy>/eval.json.
"""

from __future__ import annotations

import json
import os
import sys
import time

from embodied.cli.console import print_help, quiet_third_party_logs


def evaluate_saved_policy(overrides: list[str]) -> tuple[list[dict], str]:
    """The per-task table of the policy and env ``overrides`` describe, and the JSON file it was written to."""
    import torch

    from embodied.cli.train import compose_train_config
    from embodied.config.schema import validate
    from embodied.rollout.device_bridge import learner_device
    from embodied.rollout.evaluate import run_episodes
    from embodied.rollout.task_table import episode_tasks, format_table, task_table
    from embodied.runner.builders import build_env, refuse_unrendered_cameras
    from policies.base import from_pretrained

    cfg = compose_train_config(overrides)
    validate(cfg)
    x = cfg.experiment
    policy_dir = cfg.init_from or os.path.join(x.output_dir, "final_policy")
    if not os.path.isdir(policy_dir):
        raise FileNotFoundError(f"no policy at {policy_dir}: pass init_from=<a final_policy directory> (or train "
                                f"experiment.name={x.name} first)")
    if not os.access(policy_dir, os.W_OK):
        raise PermissionError(f"cannot write the table to {policy_dir}/eval.json: copy the policy somewhere writable")
    torch.set_num_threads(max(1, x.torch_threads))
    policy = from_pretrained(policy_dir).to(learner_device(x.device))
    refuse_unrendered_cameras(policy, cfg.env.cameras, f"the policy {policy_dir}")
    env = build_env(cfg, min(x.eval_num_envs, x.eval_episodes), autoreset=False)
    started = time.perf_counter()
    try:
        print(f"embodied-eval: {policy_dir} on {cfg.env.backend}:{cfg.env.task}, {x.eval_episodes} episodes "
              f"({env.num_envs} side by side)", flush=True)
        episodes, _ = run_episodes(policy, env, x.eval_episodes, x.eval_seed)
        rows = task_table(episodes, episode_tasks(env, cfg.env.task, x.eval_episodes))
    finally:
        env.close()
    seconds = time.perf_counter() - started
    name = f"{cfg.env.suite} ({cfg.env.split} split)" if cfg.env.suite else cfg.env.task
    print(format_table(rows, f"{name}: success per task (seed {x.eval_seed}, {seconds:.0f} s)"))
    path = os.path.join(policy_dir, "eval.json")
    with open(path, "w") as f:
        json.dump({"policy": policy_dir, "backend": cfg.env.backend, "task": cfg.env.task, "suite": cfg.env.suite,
                   "split": cfg.env.split, "seed": x.eval_seed,
                   "seconds": seconds, "rows": rows}, f, indent=2)
    return rows, path


def main() -> None:
    """Console entry point; ``--help`` prints this docstring, the config groups and the composed config."""
    from embodied.cli.train import _config_path

    quiet_third_party_logs()
    args = sys.argv[1:]
    if any(arg in ("-h", "--help") for arg in args):
        print_help(__doc__, _config_path(), "train", [a for a in args if a not in ("-h", "--help")])
        return
    from hydra.errors import HydraException

    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        _, path = evaluate_saved_policy(args)
    except (ValueError, KeyError, OSError, ImportError, RuntimeError, HydraException) as error:
        sys.exit(f"embodied-eval: {str(error).splitlines()[0]} (`embodied-eval --help` lists the settings)")
    print(f"embodied-eval: table written to {path}")


if __name__ == "__main__":
    main()

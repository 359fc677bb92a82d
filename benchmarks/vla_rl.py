"""Pixel-VLA PPO throughput: where an iteration's time goes, before and after each speed-up, in one run.

Run: python benchmarks/vla_rl.py [--iterations 2] [--out benchmarks/results/vla_rl.json]
The policy is the one the SFT recipe trains (policy=vla: front, wrist and side cameras at 64 px, keypoints with
FiLM, MiniLM, chunks of 4), its weights untrained (time does not depend on them). PPO on PickCube,
``--num-envs`` worlds x ``--rollout-steps`` chunks per iteration, timed over ``--iterations`` iterations after one
warm-up. Collection is split into rendering, the rest of the simulator step (physics, controller, task), and
policy inference (with the frozen towers' feature caching); the update is ``update_policy`` (all epochs).
The first row is the default (render quality full: one frame drawn and read at a time, as before the tiled
renderer); each row after it adds one change to the row above; "env-steps/s" counts collection and update together.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402
from results_io import write_results  # noqa: E402

from embodied.cli.train import compose_train_config  # noqa: E402
from embodied.rollout.obs import step_chunk  # noqa: E402
from embodied.runner.trainer import Trainer  # noqa: E402
from embodied.runner.update import update_policy  # noqa: E402

# (row name, overrides it adds to the row above)
SETTINGS = [
    ("before: render quality full, vision trained, 8 epochs", []),
    ("+ render quality fast (tiled)", ["env.render_quality=fast"]),
    ("+ render quality fastest", ["env.render_quality=fastest"]),
    ("+ frozen vision (features cached at collection)", ["policy.vision.freeze=true"]),
    ("+ 2 epochs", ["algo.update_epochs=2"]),
]


def timed_iterations(overrides: list[str], iterations: int) -> dict:
    """Seconds per phase summed over ``iterations`` PPO iterations (after one warm-up) and the env-steps."""
    cfg = compose_train_config(["policy=vla", "env=pick_cube", "algo=ppo", *overrides])
    cfg.experiment.progress, cfg.experiment.output_dir = False, tempfile.mkdtemp(prefix="bench_vla_rl_")
    trainer = Trainer(cfg)
    collector, env = trainer.collector, trainer.env
    seconds = {"render": 0.0, "simulate": 0.0, "infer": 0.0, "update": 0.0}
    render = env.renderer.render

    def timed_render(*args, **kwargs):
        start = time.perf_counter()
        images = render(*args, **kwargs)
        seconds["render"] += time.perf_counter() - start
        return images

    env.renderer.render = timed_render
    steps = 0
    for iteration in range(iterations + 1):
        if iteration == 1:  # the first iteration warms up (allocations, instruction cache)
            seconds = dict.fromkeys(seconds, 0.0)
            steps = 0
        collector.begin()
        for _ in range(cfg.algo.rollout_steps):
            start = time.perf_counter()
            inferred = collector.infer()
            seconds["infer"] += time.perf_counter() - start
            start = time.perf_counter()
            stepped = step_chunk(env, inferred[1])
            seconds["simulate"] += time.perf_counter() - start
            collector.record(inferred, stepped)
        batch, metrics = collector.finish()
        steps += metrics["env_steps"]
        start = time.perf_counter()
        torch.set_num_threads(trainer.update_threads)
        update_policy(trainer.policy, trainer.optimizer, batch, cfg.algo)
        torch.set_num_threads(cfg.experiment.torch_threads)
        seconds["update"] += time.perf_counter() - start
    seconds["simulate"] -= seconds["render"]  # rendering happens inside the simulator step
    total = sum(seconds.values())
    return {**{f"{k}_s": v for k, v in seconds.items()}, "env_steps": steps, "env_steps_per_s": steps / total,
            "collect_env_steps_per_s": steps / (total - seconds["update"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--num-envs", type=int, default=32)
    parser.add_argument("--rollout-steps", type=int, default=16, help="chunks of 4 actions per env per iteration")
    parser.add_argument("--out", default="benchmarks/results/vla_rl.json")
    args = parser.parse_args()
    base = [f"env.num_envs={args.num_envs}", f"algo.rollout_steps={args.rollout_steps}", "algo.update_epochs=8"]
    rows, overrides = [], list(base)
    for name, extra in SETTINGS:
        overrides += extra
        rows.append({"setting": name, **timed_iterations(overrides, args.iterations)})
        print(f"done: {name}", flush=True)
    first = rows[0]["env_steps_per_s"]
    print(f"\nPPO on PickCube with the pixel VLA, {args.num_envs} envs x {args.rollout_steps} chunks of 4, "
          f"{args.iterations} iterations; seconds per 1,000 env-steps, {os.cpu_count()} CPU cores")
    print(f"{'setting':<52} | {'render':>6} | {'sim':>6} | {'infer':>6} | {'update':>6} | {'env-steps/s':>11} | ratio")
    for row in rows:
        per_k = {k: 1000 * row[f"{k}_s"] / row["env_steps"] for k in ("render", "simulate", "infer", "update")}
        print(f"{row['setting']:<52} | {per_k['render']:>6.2f} | {per_k['simulate']:>6.2f} | {per_k['infer']:>6.2f} | "
              f"{per_k['update']:>6.2f} | {row['env_steps_per_s']:>11.0f} | {row['env_steps_per_s'] / first:.2f}x")
    write_results(args.out, {"num_envs": args.num_envs, "rollout_steps": args.rollout_steps,
                             "iterations": args.iterations, "rows": rows})


if __name__ == "__main__":
    main()

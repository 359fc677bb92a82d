"""Pixel-VLA RL from a weak SFT start: PPO + SFT anchor, GRPO on the sparse reward and residual PPO, in a time budget.

Run: python benchmarks/vla_rl_learning.py [--demos 10] [--sft-steps 1500] [--budget-s 1800] [--seeds 1 2]
         [--methods ppo_anchor grpo residual] [--root /tmp/vla_rl_learning] [--side-by-side]
         (15 minutes + the budget per method and seed; + the budget per method with --side-by-side)
1. The scripted expert records ``--demos`` PickCube episodes with the policy's cameras (front, wrist, side, 64 px).
2. Per seed, the pixel VLA (policy=vla) is trained on them by SFT (experiment=vla_sft for ``--sft-steps`` steps,
   both cores, one seed after the other): the start, whose success s0 is evaluated again at the RL render quality.
3. Per method, one seed after the other, each run alone on the machine (``--side-by-side``: the seeds at once, one
   torch thread each, MuJoCo's threads sharing both cores), for ``--budget-s`` seconds of wall clock
   (``experiment.time_limit_s``, evaluations included), from its seed's SFT policy:
   * ``ppo_anchor``: PPO on the dense reward + 0.1 x the SFT loss on the same demos, with an asymmetric critic
     (``policy.critic=privileged``: proprioception and the task state) warmed up for 3 iterations;
   * ``ppo_anchor_mean``: the same with the anchor's gradient kept off the std (``algo.anchor_fits_std=false``):
     it pulls the action mean to the demos while the std PPO explores with learns from the RL loss alone;
   * ``ppo_anchor_full``: the same with the per-frame renderer's images (``env.render_quality=full``) for 98,304
     env-steps (its first three evaluations), to compare learning per env-step with and without tiled rendering;
   * ``grpo``: GRPO on the sparse reward (groups of 8 from identical resets, dynamic sampling, clip-higher), with
     the same anchor;
   * ``residual``: PPO on a per-step correction over the frozen SFT VLA (experiment=residual), the correction and
     its critic reading proprioception and the VLA's action.
Success is success_once over 64 fixed evaluation episodes (deterministic actions, eval seed 10000). A folder given
by ``--root`` that already holds finished runs is read, not run again. Writes benchmarks/results/vla_rl_learning.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess

from results_io import write_results

RL_RENDER_QUALITY = "fast"  # tiled frames: 4-5x the per-frame renderer (sim_throughput.py)
COMMON = ["env=pick_cube", f"env.render_quality={RL_RENDER_QUALITY}", "env.num_envs=32",
          "experiment.total_env_steps=100000000", "experiment.eval_episodes=64", "experiment.checkpoint_interval=40",
          "experiment.torch_threads=1", "experiment.progress=false"]
ALONE = ["experiment.update_threads=0"]  # the update uses both cores while the simulator waits
SIDE_BY_SIDE = ["experiment.update_threads=1"]  # each run keeps to one core
# the VLA trained whole from its SFT weights ({sft}), anchored on the demos ({demos})
FINE_TUNE = ["policy=vla", "init_from={sft}", "algo.learning_rate=5e-5", "algo.anchor_coef=0.1",
             "data.anchor_paths=[{demos}]", "policy.critic=privileged"]
PPO_ANCHOR = [*FINE_TUNE, "algo=ppo", "algo.rollout_steps=16", "algo.update_epochs=4",
              "algo.critic_warmup_iterations=3", "experiment.eval_interval=16"]
METHODS = {  # overrides each method adds to COMMON (a later value of a key replaces COMMON's)
    "ppo_anchor": PPO_ANCHOR,
    # the anchor pulls only the action mean: the Gaussian NLL on 10 well-fitted demos would otherwise shrink the
    # std PPO explores with (ppo_anchor's entropy fell from -1.5 to -2.1 in 30 minutes)
    "ppo_anchor_mean": [*PPO_ANCHOR, "algo.anchor_fits_std=false"],
    # the same at the per-frame renderer's images, for its first three evaluations (16 iterations of 2,048
    # env-steps apart): whether the tiled images of ppo_anchor cost learning per env-step
    "ppo_anchor_full": [*PPO_ANCHOR, "env.render_quality=full", "experiment.total_env_steps=98304"],
    "grpo": [*FINE_TUNE, "algo=grpo", "env.reward_mode=sparse", "algo.group_size=8", "algo.groups_per_batch=4",
             "experiment.eval_interval=4"],
    # PPO on a per-step correction over the frozen VLA (experiment=residual's scale and std), reading
    # proprioception and the VLA's action: the actor sees no privileged state
    "residual": ["experiment=residual", "base={sft}", "policy.obs_keys=[state]", "env.cameras=[front,wrist,side]",
                 "experiment.eval_interval=10"],
}
ENV = {**os.environ, "MUJOCO_GL": "egl"}


def record_demos(root: str, demos: int) -> str:
    """The expert's PickCube demos with the VLA's three cameras (kept when the folder already has them)."""
    path = os.path.join(root, "demos")
    if not os.path.exists(os.path.join(path, "meta", "info.json")):
        subprocess.run(["embodied-record-demos", "--task", "PickCube", "--episodes", str(demos), "--cameras",
                        "front", "wrist", "side", "--out", path, "--seed", "7"], check=True, env=ENV)
    return path


def train_sft(root: str, demos: str, seed: int, steps: int) -> dict:
    """SFT of the pixel VLA on ``demos``; its summary (kept when the run finished before)."""
    out = os.path.join(root, f"sft_s{seed}")
    if not os.path.exists(os.path.join(out, "summary.json")):
        subprocess.run(["embodied-train", "experiment=vla_sft", "env=pick_cube", f"data.paths=[{demos}]",
                        f"algo.sft_steps={steps}", "data.scene_frames=1024", f"experiment.seed={seed}",
                        "experiment.progress=false", f"experiment.output_dir={out}"], check=True, env=ENV)
    return read_json(os.path.join(out, "summary.json"))


def start_success(policy_dir: str) -> float:
    """s0 at the RL runs' render quality, over the same 64 evaluation episodes."""
    subprocess.run(["embodied-eval", "policy=vla", "env=pick_cube", f"init_from={policy_dir}",
                    f"env.render_quality={RL_RENDER_QUALITY}", "experiment.eval_episodes=64"],
                   check=True, env=ENV, stdout=subprocess.DEVNULL)
    return read_json(os.path.join(policy_dir, "eval.json"))["rows"][0]["success"]


def run_rl(root: str, demos: str, method: str, seeds: list[int], budget_s: float,
           side_by_side: bool) -> dict[int, dict]:
    """``method`` from each seed's SFT policy, alone in turn or the seeds side by side; seed -> summary."""
    runs, procs = {}, []
    threads = SIDE_BY_SIDE if side_by_side else ALONE
    for seed in seeds:
        out = runs[seed] = os.path.join(root, f"{method}_s{seed}")
        if os.path.exists(os.path.join(out, "summary.json")):
            continue
        if os.path.exists(out):  # resuming would give it a second budget
            raise SystemExit(f"{out} holds an unfinished run: delete it to run {method} seed {seed} again")
        sft = os.path.join(root, f"sft_s{seed}", "final_policy")
        method_overrides = [o.format(sft=sft, demos=demos) for o in METHODS[method]]
        cmd = ["embodied-train", *merge_overrides(COMMON, threads, method_overrides, [
            f"experiment.time_limit_s={budget_s}", f"experiment.seed={seed}", f"experiment.name={method}_s{seed}",
            f"experiment.output_dir={out}"])]
        procs.append(subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL))
        if not side_by_side and procs[-1].wait():
            break
    if any([proc.wait() for proc in procs]):  # every run to its end, then the verdict
        raise SystemExit(f"a {method} run failed: see its hydra/train.log under {root}")
    return {seed: read_json(os.path.join(out, "summary.json")) for seed, out in runs.items()}


def merge_overrides(*lists: list[str]) -> list[str]:
    """The Hydra overrides of ``lists`` in order, a later value of a key replacing an earlier one."""
    merged: dict[str, str] = {}
    for override in (o for overrides in lists for o in overrides):
        merged[override.partition("=")[0]] = override
    return list(merged.values())


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--sft-steps", type=int, default=1500)
    parser.add_argument("--budget-s", type=float, default=1800.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--root", default="/tmp/vla_rl_learning")
    parser.add_argument("--out", default="benchmarks/results/vla_rl_learning.json")
    parser.add_argument("--side-by-side", action="store_true",
                        help="run a method's seeds at once on one core each, not one after the other alone")
    args = parser.parse_args()
    demos = record_demos(args.root, args.demos)
    starts = {}
    for seed in args.seeds:
        sft = train_sft(args.root, demos, seed, args.sft_steps)
        starts[seed] = {"sft_eval": sft["final_eval"]["success_once"], "sft_seconds": sft["training_s"],
                        "s0": start_success(os.path.join(args.root, f"sft_s{seed}", "final_policy"))}
    rows = []
    for method in args.methods:
        for seed, summary in run_rl(args.root, demos, method, args.seeds, args.budget_s,
                                    args.side_by_side).items():
            s0, final, best = starts[seed]["s0"], summary["final_eval"], summary["best_eval"]
            rows.append({"method": method, "seed": seed, "s0": s0, "final": final["success_once"],
                         "gain_points": 100 * (final["success_once"] - s0), "best": best["success_once"],
                         "best_env_steps": best["env_steps"], "env_steps": summary["env_steps"],
                         "wall_s": summary["wall_clock_s"], "env_steps_per_s": summary["env_steps_per_s"],
                         "curve": read_curve(os.path.join(args.root, f"{method}_s{seed}"))})
    print(f"\nPickCube, pixel VLA from SFT on {args.demos} demos ({args.sft_steps} steps); RL for {args.budget_s:.0f} "
          f"s of wall clock per run, {'seeds side by side, one core each' if args.side_by_side else 'each run alone'}; "
          "64 evaluation episodes per rate")
    print("| method | seed | s0 | final | gain (points) | best (env-steps) | env-steps | wall s | env-steps/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['seed']} | {r['s0']:.3f} | {r['final']:.3f} | {r['gain_points']:+.1f} | "
              f"{r['best']:.3f} ({r['best_env_steps']:,}) | {r['env_steps']:,} | {r['wall_s']:.0f} | "
              f"{r['env_steps_per_s']:.0f} |")
    write_results(args.out, {"demos": args.demos, "sft_steps": args.sft_steps, "budget_s": args.budget_s,
                             "render_quality": RL_RENDER_QUALITY, "starts": starts, "runs": rows,
                             "side_by_side": args.side_by_side,
                             "settings": {"common": COMMON + (SIDE_BY_SIDE if args.side_by_side else ALONE),
                                          **METHODS}})


def read_curve(run_dir: str) -> list[tuple[int, float]]:
    """(env-steps, success_once) of every evaluation of a run, from its tensorboard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(run_dir, "tb"))
    events.Reload()
    return [(e.step, round(e.value, 4)) for e in events.Scalars("eval/success_once")]


if __name__ == "__main__":
    main()

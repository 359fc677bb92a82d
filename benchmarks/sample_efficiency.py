"""Sample efficiency of the RL algorithms (state tasks; RLPD from pixels too): env-steps and seconds to 80% success.

Run: python benchmarks/sample_efficiency.py [--tasks PushCube PickCube] [--seeds 1 2] [--methods ppo sac rlpd]
Each method trains exactly as ``embodied-train`` composes it (Hydra, the shipped configs) with
``experiment.stop_at_success=0.8``: the run ends at the first evaluation (64 episodes, the trainer's eval seed) that
reaches 80% success_once, or at its method's budget of env-steps (``--budgets``). Methods:
- ppo: ``algo=ppo policy=mlp`` (64 envs), the project's on-policy baseline;
- sac: ``algo=sac policy=tanh_mlp`` (16 envs) from scratch;
- rlpd: ``algo=rlpd policy=tanh_mlp`` (16 envs), half of each batch from 20 scripted-expert episodes;
- rlpd_bc: RLPD with the Q-filtered BC term on its demonstration rows (``algo.bc_coef=1.0``) and the actor on the
  critics' minimum (``algo.actor_q=min``);
- rlpd_pixels: ``algo=rlpd policy=pixel_tanh`` (16 envs): RLPD from the front camera's 32x32 images and the
  proprioception (no task state), the image encoder trained by the critics (DrQ);
- rlpd_residual: ``algo=rlpd policy=residual_tanh`` (16 envs) over a frozen base, an MLP trained by SFT on the 20
  recorded episodes (``algo=sft policy=mlp policy.chunk_size=4``, 2,000 steps; recorded and trained once under
  ``--data``) whose 4-action chunks run open loop; Q scores each step's action;
- wsrl: ``algo=wsrl policy=tanh_mlp`` (16 envs): Cal-QL pre-training on 20 scripted-expert episodes (its evaluation
  at 0 env-steps is the pre-trained policy's), a warm-up played by it, then SAC without the demonstrations;
- wsrl_no_warmup: the same with ``algo.learning_starts=0`` (the ablation that should show the collapse);
- ppo_sft: PPO from an SFT start on 20 scripted-expert episodes (``experiment=rl_co`` on them: 2,000 SFT steps, then
  PPO with the SFT anchor), recorded once under ``--data``; its first evaluation is the SFT policy's, at 0 env-steps.
Columns: env-steps and training seconds (evaluations excluded) to 80%, the final success, the env-steps ratio
to PPO on the same task and seed (the issue's goals: SAC <= 1/3 of PPO from scratch on PushCube, RLPD <= 1/5 of PPO
from the SFT start on PickCube: run ``--methods ppo_sft rlpd``, the ratio is then to ppo_sft), and for runs that
start from a pre-trained or SFT policy its success at 0 env-steps and the lowest success in the first 10,000
env-steps after it (WSRL's goal: no drop of more than 10 points). Writes benchmarks/results/sample_efficiency.json.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402
from results_io import write_results  # noqa: E402

TASKS = {"PushCube": "push_cube", "PickCube": "pick_cube", "Reach": "reach"}
METHODS = {
    # env-steps per iteration: 64 envs x 50 steps (ppo), 16 x 50 (off-policy); evaluations every 9.6k / 4k env-steps
    "ppo": ["algo=ppo", "policy=mlp", "env.num_envs=64", "experiment.eval_interval=3"],
    "sac": ["algo=sac", "policy=tanh_mlp", "env.num_envs=16", "experiment.eval_interval=5"],
    "rlpd": ["algo=rlpd", "policy=tanh_mlp", "env.num_envs=16", "experiment.eval_interval=5"],
    "rlpd_bc": ["algo=rlpd", "policy=tanh_mlp", "env.num_envs=16", "experiment.eval_interval=5", "algo.bc_coef=1.0",
                "algo.actor_q=min"],
    # from pixels: the front camera at 32x32 (the proprioception beside it), evaluated every 1.6k env-steps
    "rlpd_pixels": ["algo=rlpd", "policy=pixel_tanh", "env.num_envs=16", "env.image_size=[32,32]",
                    "experiment.eval_interval=2"],
    # a correction over a frozen SFT base predicting 4-action chunks (trained once under --data, like ppo_sft's demos)
    "rlpd_residual": ["algo=rlpd", "policy=residual_tanh", "base={base}", "env.num_envs=16",
                      "experiment.eval_interval=5"],
    "wsrl": ["algo=wsrl", "policy=tanh_mlp", "env.num_envs=16", "experiment.eval_interval=5"],
    "wsrl_no_warmup": ["algo=wsrl", "policy=tanh_mlp", "env.num_envs=16", "experiment.eval_interval=5",
                       "algo.learning_starts=0"],
    "ppo_sft": ["experiment=rl_co", "policy=mlp", "env.num_envs=64", "experiment.eval_interval=3",
                "data.paths=['{demos}']", "data.anchor_paths=['{demos}']"],
}
BASELINES = ("ppo", "ppo_sft")  # the methods a ratio is taken to (the last of them run before, per task and seed)
DEMOS = 20  # scripted-expert episodes of rlpd (played in its run) and ppo_sft (recorded under --data)
THRESHOLD = 0.8
DIP_WINDOW = 10_000  # env-steps after the start in which WSRL must keep its pre-trained success
# env-steps at most: PPO reaches 80% on PushCube near 320k (tests/test_training.py); off-policy runs are cut where they
# could no longer meet the goal (1/3 of PPO's env-steps) and cost ~10x more CPU per env-step
BUDGETS = {"ppo": 480_000, "sac": 160_000, "rlpd": 160_000, "rlpd_bc": 160_000, "rlpd_pixels": 160_000,
           "rlpd_residual": 160_000, "wsrl": 160_000, "wsrl_no_warmup": 160_000, "ppo_sft": 480_000}


def record(task: str, root: str) -> str:
    """``DEMOS`` scripted-expert episodes of ``task`` (state only) as a LeRobot dataset (recorded once, reused)."""
    from embodied.data.demos import env_features, record_expert_demos
    from embodied.data.writer import LeRobotDatasetWriter
    from sims import make_env

    path = os.path.join(root, f"{task.lower()}_{DEMOS}")
    info = os.path.join(path, "meta", "info.json")
    if os.path.isfile(info):
        with open(info) as f:
            episodes = json.load(f)["total_episodes"]
        if episodes != DEMOS:
            raise SystemExit(f"{path} holds {episodes} episodes, not {DEMOS} (a recording cut short?): delete it")
        return path
    env = make_env(task=task, num_envs=DEMOS, autoreset=False)
    writer = LeRobotDatasetWriter.create(path, fps=float(env.control_hz), features=env_features(env))
    record_expert_demos(env, writer, DEMOS, seed=0, progress=False)
    env.close()
    return path


def sft_base(task: str, root: str, threads: int) -> str:
    """rlpd_residual's frozen base: ``algo=sft policy=mlp policy.chunk_size=4`` on the recorded episodes (trained once,
    reused); its saved policy directory."""
    from embodied.cli.train import compose_train_config
    from embodied.runner.loops import make_trainer

    out = os.path.join(root, f"{task.lower()}_{DEMOS}_sft_chunk4")
    policy = os.path.join(out, "final_policy")
    if not os.path.isfile(os.path.join(policy, "model.safetensors")):
        make_trainer(compose_train_config([
            f"env={TASKS[task]}", "algo=sft", "policy=mlp", "policy.chunk_size=4",
            f"data.paths=['{record(task, root)}']",
            "experiment.seed=1", f"experiment.output_dir={out}", "experiment.progress=false", "experiment.video=false",
            f"experiment.torch_threads={threads}"])).train()
    return policy


def compose(task: str, method: str, seed: int, out: str, budget: int, threads: int, demos: str = "", base: str = ""):
    """The TrainConfig ``embodied-train env=<task> <method's overrides>`` would run, stopping at 80%."""
    from embodied.cli.train import compose_train_config

    return compose_train_config([
        f"env={TASKS[task]}", *(o.format(demos=demos, base=base) for o in METHODS[method]), f"experiment.seed={seed}",
        f"experiment.output_dir={out}",
        f"experiment.total_env_steps={budget}", f"experiment.stop_at_success={THRESHOLD}",
        "experiment.progress=false", "experiment.video=false", "experiment.checkpoint_interval=0",
        f"experiment.torch_threads={threads}", f"experiment.update_threads={threads}"])


def run(task: str, method: str, seed: int, args) -> dict:
    """Train one method until 80% or the budget; the row of the table."""
    from embodied.runner.loops import make_trainer

    out = os.path.join(args.runs, f"{task}_{method}_s{seed}")
    budget = args.budgets[method]
    demos = record(task, args.data) if "{demos}" in " ".join(METHODS[method]) else ""
    base = sft_base(task, args.data, args.threads) if "{base}" in " ".join(METHODS[method]) else ""
    trainer = make_trainer(compose(task, method, seed, out, budget, args.threads, demos, base))
    final = trainer.train()
    in_loop = trainer.eval_history[:-1]  # the last entry is the final evaluation
    reached = next((e for e in in_loop if e["success_once"] >= THRESHOLD), None)
    return {"task": task, "method": method, "seed": seed, "budget": budget,
            "env_steps_to_80": reached["env_steps"] if reached else None,
            "seconds_to_80": reached["seconds"] if reached else None,
            "final_success": final["success_once"], "env_steps": trainer.counters["env_steps"],
            "curve": [(e["env_steps"], e["success_once"]) for e in in_loop], **start_and_dip(in_loop)}


def start_and_dip(evaluations: list[dict]) -> dict:
    """The success at 0 env-steps (a pre-trained or SFT start) and the lowest of the evaluations within the first
    ``DIP_WINDOW`` env-steps after it (WSRL's goal: no more than 10 points below the start); empty without a start."""
    if not evaluations or evaluations[0]["env_steps"] != 0:
        return {}
    early = [e["success_once"] for e in evaluations[1:] if e["env_steps"] <= DIP_WINDOW]
    return {"start_success": evaluations[0]["success_once"], "lowest_in_window": min(early, default=None)}


def format_row(row: dict, baseline: dict | None) -> str:
    """One markdown row; the env-steps ratio to ``baseline`` (a PPO row of the same task and seed) when both reached
    80%."""
    steps = row["env_steps_to_80"]
    ratio = "-"
    if baseline and baseline is not row and baseline["env_steps_to_80"] and steps is not None:
        ratio = f"{steps / baseline['env_steps_to_80']:.2f} ({baseline['method']})"
    reached = f"{steps:,}" if steps is not None else f"> {row['env_steps']:,}"
    seconds = f"{row['seconds_to_80']:.0f}" if steps is not None else "-"
    start = f"{row['start_success']:.3f}" if "start_success" in row else "-"
    dip = f"{row['lowest_in_window']:.3f}" if row.get("lowest_in_window") is not None else "-"
    return (f"| {row['task']} | {row['method']} | {row['seed']} | {reached} | {seconds} | {row['final_success']:.3f} | "
            f"{ratio} | {start} | {dip} |")


def main() -> None:
    """Train every method on every task and seed; print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["PushCube", "PickCube"], choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--budgets", nargs="*", default=[], metavar="METHOD=ENV_STEPS",
                        help=f"env-steps at most per run of a method (defaults: {BUDGETS})")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each run")
    parser.add_argument("--runs", default="runs/sample_efficiency")
    parser.add_argument("--data", default="demos/sample_efficiency",
                        help="where the expert datasets (ppo_sft) and SFT bases (rlpd_residual) are kept")
    parser.add_argument("--out", default="benchmarks/results/sample_efficiency.json")
    args = parser.parse_args()
    args.budgets = BUDGETS | {name: int(steps) for name, _, steps in (b.partition("=") for b in args.budgets)}
    torch.set_num_threads(args.threads)
    rows = []
    print("| task | method | seed | env-steps to 80% | seconds to 80% | final success | env-steps / baseline's | "
          f"success at 0 | lowest in first {DIP_WINDOW:,} |\n|---|---|---|---|---|---|---|---|---|", flush=True)
    for task in args.tasks:
        for seed in args.seeds:
            baseline = None
            for method in args.methods:
                row = run(task, method, seed, args)
                row["ratio_to"] = baseline["method"] if baseline and method not in BASELINES else None
                baseline = row if method in BASELINES else baseline
                rows.append(row)
                print(format_row(row, baseline), flush=True)
                write_results(args.out, {"rows": rows, "threshold": THRESHOLD, "methods": METHODS})


if __name__ == "__main__":
    main()

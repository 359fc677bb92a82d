"""The tabletop task suite: expert success per task, and the pixel VLA's per-task success on the three splits.

Run: python benchmarks/tabletop_suite.py [--seeds 1 2] [--demos 1050] [--policies DIR ...] [--expert-only]
1. The scripted expert on every task of the ``train`` and ``composition`` splits (``--expert-episodes`` per task,
   no cameras): the bound a learned policy is compared with.
2. Per seed, ``experiment=vla_sft_suite`` trained on ``--demos`` expert episodes of the 21 training tasks (recorded
   once into ``--data`` with the front and wrist cameras, reused when there), exactly as
   ``embodied-train experiment=vla_sft_suite data.paths=[...] experiment.seed=S`` runs it; ``--policies`` evaluates
   saved policies instead of training.
3. Each policy on each split by ``embodied-eval``'s code (deterministic actions, reset ids 0..: every task the same
   number of times): ``--episodes-per-task`` episodes per task on train and paraphrase, twice that on the 8
   compositions.
Prints one table per split (a row per task, a column per seed) and writes benchmarks/results/tabletop_suite.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from results_io import write_results  # noqa: E402

from sims import make_env  # noqa: E402
from sims.experts import WaypointExpert  # noqa: E402
from sims.tasks.suite_catalog import suite_tasks  # noqa: E402

SPLITS = ("train", "paraphrase", "composition")


def expert_success(split: str, per_task: int) -> dict[str, float]:
    """The waypoint expert's success per task of ``split`` (reset ids 0.., so task r % T)."""
    tasks = suite_tasks("tabletop", split)
    env = make_env("mujoco", task="TabletopSuite", suite="tabletop", split=split, num_envs=per_task * len(tasks),
                   autoreset=False)
    env.reset(seed=0, reset_ids=np.arange(env.num_envs))
    expert = WaypointExpert(env)
    success = torch.zeros(env.num_envs, dtype=torch.bool)
    done = torch.zeros(env.num_envs, dtype=torch.bool)
    while not done.all():
        _, _, term, trunc, info = env.step(expert.act())
        success |= info["success"]
        done |= term | trunc
    rates = success.reshape(per_task, len(tasks)).float().mean(0)
    return {task.name: float(rate) for task, rate in zip(tasks, rates)}


def record(path: str, episodes: int) -> None:
    """The training demonstrations (front and wrist cameras), unless ``path`` holds a dataset already."""
    if os.path.isfile(os.path.join(path, "meta", "info.json")):
        return
    subprocess.run([sys.executable, "-m", "embodied.cli.record_demos", "--suite", "tabletop", "--episodes",
                    str(episodes), "--frames-after-success", "10", "--cameras", "front", "wrist", "--num-envs", "21",
                    "--out", path], check=True)


def train(data: str, seed: int, runs: str) -> str:
    """SFT of experiment=vla_sft_suite with ``seed``; returns its final policy directory."""
    name = f"tabletop_vla_sft_seed{seed}"
    subprocess.run([sys.executable, "-m", "embodied.cli.train", "experiment=vla_sft_suite",
                    f"data.paths=[{data}]", f"experiment.seed={seed}", f"experiment.name={name}",
                    f"experiment.output_dir={runs}/{name}"], check=True)
    return os.path.join(runs, name, "final_policy")


def evaluate_split(policy: str, data: str, split: str, episodes: int) -> list[dict]:
    """``embodied-eval``'s per-task rows of ``policy`` on ``split``."""
    from embodied.cli.eval import evaluate_saved_policy

    rows, _ = evaluate_saved_policy(["experiment=vla_sft_suite", f"data.paths=[{data}]", f"init_from={policy}",
                                     f"env.split={split}", f"experiment.eval_episodes={episodes}"])
    return rows


def with_family_means(rows: list[dict]) -> list[dict]:
    """``rows`` (embodied-eval's, the mean over tasks last) with each family's mean over its tasks before the last."""
    families: dict[str, list[dict]] = {}
    for row in rows[:-1]:
        families.setdefault(row["task"].split(": ")[1], []).append(row)
    means = [{"task": f"mean: {family}", "episodes": sum(r["episodes"] for r in members),
              "success": sum(r["success"] for r in members) / len(members)} for family, members in families.items()]
    return rows[:-1] + means + rows[-1:]


def format_split(split: str, results: dict[str, list[dict]]) -> str:
    """One split's rows: task, then each policy's success (and the episodes behind it)."""
    names = list(results)
    tasks = [row["task"] for row in results[names[0]]]
    width = max(len(t) for t in tasks)
    lines = [f"{split} split", f"{'task':<{width}}  " + "  ".join(f"{n[-14:]:>14}" for n in names)]
    for i, task in enumerate(tasks):
        cells = [f"{results[n][i]['success']:.3f} ({results[n][i]['episodes']:>3})" for n in names]
        lines.append(f"{task:<{width}}  " + "  ".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--demos", type=int, default=1050, help="expert episodes of the training tasks")
    parser.add_argument("--data", default="demos/tabletop")
    parser.add_argument("--runs", default="runs/benchmarks")
    parser.add_argument("--policies", nargs="*", default=None, help="evaluate these saved policies, train none")
    parser.add_argument("--episodes-per-task", type=int, default=10)
    parser.add_argument("--expert-episodes", type=int, default=100, help="expert episodes per task")
    parser.add_argument("--expert-only", action="store_true", help="stop after the expert's table")
    parser.add_argument("--out", default="benchmarks/results/tabletop_suite.json")
    args = parser.parse_args()
    started = time.perf_counter()
    expert = {split: expert_success(split, args.expert_episodes) for split in ("train", "composition")}
    for split, rates in expert.items():
        print(f"expert, {split} split ({args.expert_episodes} episodes per task): min {min(rates.values()):.2f}, "
              f"mean {np.mean(list(rates.values())):.3f}")
        for task, rate in rates.items():
            print(f"  {rate:.2f}  {task}")
    results = {"expert": expert, "expert_episodes_per_task": args.expert_episodes}
    if not args.expert_only:
        policies = args.policies
        if policies is None:
            record(args.data, args.demos)
            policies = [train(args.data, seed, args.runs) for seed in args.seeds]
        per_split = {}
        for split in SPLITS:
            episodes = args.episodes_per_task * len(suite_tasks("tabletop", split))
            if split == "composition":
                episodes *= 2
            per_split[split] = {p: with_family_means(evaluate_split(p, args.data, split, episodes)) for p in policies}
            print(format_split(split, per_split[split]), flush=True)
        results["policies"] = per_split
    results["seconds"] = time.perf_counter() - started
    write_results(args.out, results)


if __name__ == "__main__":
    main()

"""Pixel VLA learning: SFT from camera images (+ proprioception, + instruction) against two state-MLP bounds.

Run: python benchmarks/vla_learning.py [--tasks Reach PickCube LangPlaceCube] [--seeds 1 2] [--variants ...]
Per task the scripted expert records ``--demos`` episodes with the front, wrist and side cameras at 64x64 (kept
in ``--data``, reused when there). Each variant is trained with ``algo=sft`` exactly as
``embodied-train algo=sft policy=... env=... data.paths=[...]`` composes it (Hydra, the shipped configs), then
evaluated over ``--eval-episodes`` fixed episodes with deterministic actions:
- mlp_privileged: the state MLP reading proprioception + privileged task state (the upper bound);
- mlp_proprio: the same MLP reading proprioception only (it cannot know where the target is: the lower bound);
- vla: ``experiment=vla_sft`` (``policy=vla`` with its defaults and the rendered scenes: the recipe this benchmark
  selected), plus any ``--variants`` (each adds its overrides to it).
Ablations of the VLA on the same episodes:
- image_swapped: every env is shown the camera images of another episode (success must fall to the
  proprioception-only level, proving the image is used);
- instruction_swapped (LangPlaceCube): each episode's instruction names another cube and another target,
  and success is scored for the new instruction (language grounding, not a fixed habit).
Columns: success_once, success_at_end, SFT seconds (training only; the JSON's setup_seconds has the loading of
the demonstrations and the rendering of the scenes), batch-1 inference ms per action chunk.
Writes benchmarks/results/vla_learning.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("MUJOCO_GL", "egl")
# OMP_WAIT_POLICY stays OpenMP's default: alone on this machine, a two-thread bf16 SFT step of experiment=vla_sft takes
# 76 ms with it and 148 ms with PASSIVE. Two runs at once: OMP_WAIT_POLICY=PASSIVE and --threads 1 each.

import torch  # noqa: E402
from results_io import write_results  # noqa: E402
from vla_latency import time_ms  # noqa: E402

from embodied.data.demos import env_features, record_expert_demos  # noqa: E402
from embodied.data.writer import LeRobotDatasetWriter  # noqa: E402
from embodied.rollout.evaluate import evaluate  # noqa: E402
from sims import make_env  # noqa: E402
from sims.tasks.lang_place import CUBE_COLOURS, TARGET_COLOURS  # noqa: E402

ENV_GROUPS = {"Reach": "reach", "PickCube": "pick_cube", "LangPlaceCube": "lang_place_cube"}
# LangPlaceCube: 600 demos hold 0.70 on three seeds (0.812 / 0.766 / 0.703); 300 gave 0.703 / 0.812 / 0.562
DEMOS = {"Reach": 100, "PickCube": 200, "LangPlaceCube": 600}
# SFT steps of every variant, the bounds included (LangPlaceCube's privileged MLP: 0.547 after 2,000, 0.875 after 8,000)
SFT_STEPS = {"Reach": 6000, "PickCube": 8000, "LangPlaceCube": 8000}  # experiment=vla_sft: 8,000 at learning rate 6e-4
CAMERAS = ("front", "wrist", "side")
BOUNDS = {"mlp_privileged": ["policy=mlp", "policy.obs_keys=[state,privileged]"],
          "mlp_proprio": ["policy=mlp", "policy.obs_keys=[state]"]}


def record(task: str, root: str, episodes: int) -> str:
    """The task's expert dataset with every camera of CAMERAS (recorded once, reused)."""
    path = os.path.join(root, task.lower())
    if os.path.isfile(os.path.join(path, "meta", "info.json")):
        return path
    env = make_env(task=task, num_envs=16, cameras=CAMERAS, autoreset=False)
    writer = LeRobotDatasetWriter.create(path, fps=float(env.control_hz), features=env_features(env))
    record_expert_demos(env, writer, episodes, seed=0, progress=True)
    env.close()
    return path


def compose(task: str, data: str, seed: int, out: str, overrides: list[str], eval_episodes: int):
    """The TrainConfig ``embodied-train algo=sft env=<task> data.paths=[data] <overrides>`` would run."""
    from embodied.cli.train import compose_train_config

    return compose_train_config([
        "algo=sft", f"env={ENV_GROUPS[task]}", f"data.paths=[{data}]", f"experiment.seed={seed}",
        f"experiment.output_dir={out}", f"experiment.eval_episodes={eval_episodes}", "experiment.progress=false",
        "algo.sft_eval_interval=0", *overrides])


class SwappedImages:
    """Env wrapper: env i is shown the camera images of env i+1 (another episode of the same wave)."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        return getattr(self.env, name)

    @staticmethod
    def _swap(obs: dict) -> dict:
        return {**obs, "rgb": {cam: images.roll(1, dims=0) for cam, images in obs["rgb"].items()}}

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self._swap(obs), info

    def step(self, action):
        obs, *rest = self.env.step(action)
        return (self._swap(obs), *rest)


class SwappedInstructions:
    """Env wrapper for LangPlaceCube: after each reset the instruction names the next cube and the next target
    (same scene), and the task scores that new instruction."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, **kwargs):
        self.env.reset(**kwargs)
        state = self.env.get_state()
        params, texts = state["world"]["params"], list(state["world"]["instructions"])
        cubes, targets = list(CUBE_COLOURS), list(TARGET_COLOURS)
        for i, text in enumerate(texts):
            cube, target = int(params[i, 0]), int(params[i, 1])
            new_cube, new_target = (cube + 1) % len(cubes), (target + 1) % len(targets)
            texts[i] = text.replace(f"the {cubes[cube]} cube", f"the {cubes[new_cube]} cube").replace(
                f"the {targets[target]} target", f"the {targets[new_target]} target")
            params[i, 0], params[i, 1] = new_cube, new_target
        state["world"]["instructions"] = texts
        return self.env.set_state(state), {}


def success(policy, env, episodes: int, seed: int) -> dict:
    """success_once / success_at_end of the project's deterministic evaluation (reset ids 0..episodes-1)."""
    summary, _ = evaluate(policy, env, episodes, seed)
    return {key: summary[key] for key in ("success_once", "success_at_end")}


def inference_ms(policy, env, repeats: int = 30) -> float:
    """Median batch-1 latency of one action chunk (``deterministic_action``) on a live observation."""
    obs, _ = env.reset(seed=123)
    one = {k: ({c: v[:1] for c, v in obs[k].items()} if isinstance(obs[k], dict) else obs[k][:1]) for k in obs}
    policy.eval()
    with torch.no_grad():
        return statistics.median(time_ms(lambda: policy.deterministic_action(one), repeats))


def run_variant(task: str, name: str, overrides: list[str], data: str, seed: int, args) -> dict:
    """Train one variant with algo=sft, evaluate it (and its ablations), return a table row."""
    from embodied.runner.sft import SFTTrainer

    out = os.path.join(args.runs, f"{task}_{name}_s{seed}")
    cfg = compose(task, data, seed, out, overrides, args.eval_episodes)
    start = time.perf_counter()
    trainer = SFTTrainer(cfg)  # loads the demonstrations and renders data.scene_frames scenes
    setup_seconds = time.perf_counter() - start
    start = time.perf_counter()
    trainer.train()  # ends with the trainer's own evaluation, excluded from the seconds below
    sft_seconds = time.perf_counter() - start - trainer.eval_seconds
    policy = trainer.policy
    cameras = tuple(cfg.env.cameras)
    env = make_env(task=task, num_envs=32, cameras=cameras, autoreset=False)
    row = {"task": task, "variant": name, "seed": seed, "overrides": overrides, "episodes": args.eval_episodes,
           **success(policy, env, args.eval_episodes, args.eval_seed), "setup_seconds": setup_seconds,
           "sft_seconds": sft_seconds,
           "sft_steps": cfg.algo.sft_steps}
    if cameras and name.startswith("vla"):
        row["inference_ms"] = inference_ms(policy, env)
        row["image_swapped"] = success(policy, SwappedImages(env), args.eval_episodes, args.eval_seed)
        if task == "LangPlaceCube":
            row["instruction_swapped"] = success(policy, SwappedInstructions(env), args.eval_episodes,
                                                     args.eval_seed)
    env.close()
    print(format_row(row), flush=True)
    return row


def format_row(r: dict) -> str:
    def ablation(key):
        return f"{r[key]['success_once']:.3f}" if key in r else "-"
    ms = f"{r['inference_ms']:.1f}" if "inference_ms" in r else "-"
    return (f"| {r['task']} | {r['variant']} | {r['seed']} | {r['success_once']:.3f} | {r['success_at_end']:.3f} | "
            f"{ablation('image_swapped')} | {ablation('instruction_swapped')} | {r['sft_seconds']:.0f} | {ms} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(ENV_GROUPS), choices=list(ENV_GROUPS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--bounds", action=argparse.BooleanOptionalAction, default=True,
                        help="also train the two MLP bounds")
    parser.add_argument("--variants", nargs="*", default=[], metavar="NAME=OVERRIDE;OVERRIDE",
                        help="extra VLA variants, e.g. 'vla_front=policy.cameras=[front];policy.aux_state_coef=0'")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME",
                        help="run only these variants (of mlp_privileged, mlp_proprio, vla and the --variants)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"SFT steps of every variant (default per task: {SFT_STEPS})")
    parser.add_argument("--eval-episodes", type=int, default=64)
    parser.add_argument("--eval-seed", type=int, default=1000)
    parser.add_argument("--data", default="demos/vla_learning", help="where the expert datasets are kept")
    parser.add_argument("--runs", default="runs/vla_learning")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads of SFT (2, alone on this 2-core machine: 13 bf16 steps/s against 7 with 1)")
    parser.add_argument("--out", default="benchmarks/results/vla_learning.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print("| task | variant | seed | success_once | success_at_end | image swapped | instruction swapped | "
          "SFT s | ms/chunk |\n|---|---|---|---|---|---|---|---|---|", flush=True)
    for task in args.tasks:
        data = record(task, args.data, DEMOS[task])
        steps = f"algo.sft_steps={args.steps or SFT_STEPS[task]}"
        variants = {"vla": ["experiment=vla_sft", f"experiment.torch_threads={args.threads}", steps]}
        for spec in args.variants:
            name, _, overrides = spec.partition("=")
            variants[name] = variants["vla"] + [o for o in overrides.split(";") if o]
        if args.bounds:
            variants = {**{name: [*o, steps] for name, o in BOUNDS.items()}, **variants}
        if args.only is not None:
            unknown = sorted(set(args.only) - set(variants))
            if unknown:
                parser.error(f"--only names unknown variants {unknown}; known: {sorted(variants)}")
            variants = {name: o for name, o in variants.items() if name in args.only}
        for seed in args.seeds:
            for name, overrides in variants.items():
                rows.append(run_variant(task, name, overrides, data, seed, args))
                write_results(args.out, {"rows": rows, "demos": DEMOS, "cameras": CAMERAS,
                                         "eval_episodes": args.eval_episodes})


if __name__ == "__main__":
    main()

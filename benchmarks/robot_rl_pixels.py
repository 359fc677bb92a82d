"""RL on the arm from a pixel SFT start (issue 23's acceptance runs): `embodied-train robot=sim_twin` on the shifted
twin, the stand-in for a real cell that differs from the simulator in colours, light, camera pose and friction.

Run: python benchmarks/robot_rl_pixels.py [--root /work/data/robot_rl_pixels] [--seeds 1 2] [--variants rl twinrl]
[--robot-steps 10000] [--twin-steps 8000] [--report]
Each step is reused from --root when it is already there (delete a folder to redo it):
1. ``demos_sim``: 100 scripted-expert Reach episodes in simulation, front and wrist cameras at 32 px (and
   ``demos_shifted_twin``, 100 in the twin, for the variants whose SFT data the twin widens).
2. ``sft_s<seed>``: the pixel start, ``algo=sft policy=pixel_tanh`` on those demos (``--sft-steps`` 3,000 at learning
   rate 1e-3, the task-state head at 20), evaluated in simulation, on the shifted domain and in its twin
   (``sft_sim+shifted_twin_s<seed>``: on both demo sets).
3. ``<variant>_s<seed>``: a robot run from it on the shifted twin at 20 Hz (``robot_rl.control_hz``) for
   ``--robot-steps`` robot steps: SAC with the SFT encoder frozen (``policy.vision.freeze``: the buffer keeps its
   keypoints), 20 expert episodes on the shifted twin as the person's offline demonstrations (``algo.demo_episodes``,
   Q-filtered BC), the pull towards the SFT actor fading over 3,000 steps, discount 0.8, one update per robot step,
   the success reward; the scripted expert stands in for the person, taking over from step 25 of the first 20
   episodes. Variants: ``rl`` (the twin resets uniformly), ``twinrl`` (TwinRL's failure mining every 10 episodes
   picks the next resets, ``robot_rl.twinrl_every=10``, mined in ``shifted_twin``: a twin built to look like the cell,
   with the simulator's friction), ``twinrl_sim`` (mined in the unshifted simulator), ``twin_sft`` (TwinRL's
   part 1: uniform resets from the SFT start on simulator and twin demos), ``twin_sft_twinrl`` (parts 1 and 3),
   ``twin_rl`` (part 2: the start is ``twin_rl_sim_s<seed>``, ``experiment=twin_pixels`` from the SFT start for
   ``--twin-steps`` env-steps of 8 worlds in the twin, with the twin's dense reward), ``twin_sft_rl`` (parts 1 and 2),
   ``twin_rl_twinrl`` (parts 2 and 3) and ``twin_all`` (parts 1, 2 and 3).
Per run: every 20 episodes (``robot_rl.eval_every``) the learner's policy is evaluated on the shifted domain over 64
fixed scenes (uniform resets, deterministic, eval seed 10000): the episode at which that first reaches 50% and 90% is
the run's measure, fair to TwinRL, whose own episodes are failure-prone ones. Also: the policy's own success over its
last 20 unassisted episodes (counted after the person's 20 episodes), the final policy's success on the shifted domain
and in simulation, the robot loop's period p50/p99 while the learner trains, updates and seconds (the robot waits while
the learner evaluates or mines).
Writes benchmarks/results/robot_rl_pixels.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from results_io import write_results  # noqa: E402
from robot_rl import WINDOW, episodes_to  # noqa: E402

from embodied.cli.train import compose_train_config  # noqa: E402
from embodied.rollout.evaluate import evaluate  # noqa: E402
from embodied.runner.builders import build_env  # noqa: E402
from embodied.runner.loops import make_trainer  # noqa: E402

CAMERAS = "[front,wrist]"
PIXELS = ["policy=pixel_tanh", f"policy.cameras={CAMERAS}", "env.image_size=[32,32]", "experiment.progress=false"]
SFT = ["algo=sft", "algo.learning_rate=1e-3", "policy.aux_state_coef=20"]
EVAL_EVERY = 20  # robot episodes between two evaluations of the learner's policy on uniform resets
ROBOT = ["experiment=robot_pixels", "env.domain=shifted", "robot_rl.person=scripted", "robot_rl.person_episodes=20",
         "robot_rl.person_after_step=25", f"robot_rl.eval_every={EVAL_EVERY}"]  # configs/experiment/robot_pixels.yaml
MINE_TWIN = ["robot_rl.twinrl_every=10", "robot_rl.twin_domain=shifted_twin"]
TWIN = ("sim", "shifted_twin")  # SFT demos widened by the twin's (TwinRL part 1)
VARIANTS = {  # name: (the start: its SFT demos' domains and whether RL in the twin follows, the robot run's overrides)
    "rl": ((("sim",), False), []),
    "twinrl": ((("sim",), False), MINE_TWIN),  # TwinRL part 3: failure mining in the twin
    "twinrl_sim": ((("sim",), False), ["robot_rl.twinrl_every=10", "robot_rl.twin_domain=sim"]),  # mined in sim
    "twin_sft": ((TWIN, False), []),  # TwinRL part 1: SFT data widened by the twin's demos
    "twin_sft_twinrl": ((TWIN, False), MINE_TWIN),  # parts 1 and 3
    "twin_rl": ((("sim",), True), []),  # TwinRL part 2: RL in the twin before deployment
    "twin_sft_rl": ((TWIN, True), []),  # parts 1 and 2
    "twin_all": ((TWIN, True), MINE_TWIN),  # parts 1, 2 and 3
    "twin_rl_twinrl": ((("sim",), True), MINE_TWIN),  # parts 2 and 3
}
PERSON_EPISODES = 20  # robot_rl.person_episodes above


def episodes_after_person_to(successes: list[bool], assisted: list[bool], rate: float) -> int | None:
    """``episodes_to`` counted from the end of the person's episodes: before it an unassisted episode is one the
    policy solved before the person's step, a sample biased towards success."""
    found = episodes_to(successes[PERSON_EPISODES:], assisted[PERSON_EPISODES:], rate)
    return None if found is None else found + PERSON_EPISODES


def record_demos(root: str, domain: str) -> str:
    """100 scripted-expert episodes of Reach in ``domain`` with the two cameras at 32 px (recorded once); the twin's
    are other scenes than the simulator's (seed 1, not 0): TwinRL's twin widens the configurations as well as the
    looks."""
    from embodied.data.demos import env_features, record_expert_demos
    from embodied.data.writer import LeRobotDatasetWriter
    from sims import make_env

    path = os.path.join(root, f"demos_{domain}")
    info = os.path.join(path, "meta", "info.json")
    if os.path.isfile(info) and json.load(open(info))["total_episodes"] != 100:
        raise RuntimeError(f"{path} holds a partly recorded demo set: delete it and run again")
    if not os.path.isfile(info):
        env = make_env(task="Reach", num_envs=16, cameras=("front", "wrist"), image_size=(32, 32), autoreset=False,
                       domain=domain)
        writer = LeRobotDatasetWriter.create(path, fps=20, features=env_features(env))
        record_expert_demos(env, writer, num_episodes=100, seed=0 if domain == "sim" else 1, progress=False)
        env.close()
    return path


def success_by_domain(cfg, policy) -> dict:
    """The policy's deterministic success (64 episodes, eval seed 10000) in simulation, on the shifted domain and in
    its twin."""
    rates = {}
    for domain in ("sim", "shifted", "shifted_twin"):
        scored = dataclasses.replace(cfg.env, domain=domain, reward_mode="sparse", terminate_on_success=True)
        env = build_env(dataclasses.replace(cfg, env=scored), 16, autoreset=False)  # as the robot run scores
        rates[domain] = evaluate(policy, env, 64, 10000)[0]["success_once"]
        env.close()
    return rates


def trained_and_scored(cfg, out: str) -> tuple[str, dict]:
    """The final policy of ``cfg``'s run in ``out`` (trained once) and its success in each domain."""
    if not os.path.isdir(os.path.join(out, "final_policy")):
        make_trainer(cfg).train()
    from policies.base import from_pretrained
    return os.path.join(out, "final_policy"), success_by_domain(cfg, from_pretrained(os.path.join(out, "final_policy")))


def sft_start(root: str, domains: tuple[str, ...], seed: int, steps: int) -> tuple[str, dict]:
    """The pixel SFT start of ``seed`` on the demos of ``domains`` (trained once) and its success in each domain."""
    out = os.path.join(root, f"sft_s{seed}" if domains == ("sim",) else f"sft_{'+'.join(domains)}_s{seed}")
    demos = ",".join(record_demos(root, domain) for domain in domains)
    cfg = compose_train_config([*SFT, *PIXELS, f"algo.sft_steps={steps}", f"data.paths=[{demos}]",
                                f"experiment.seed={seed}", f"experiment.output_dir={out}"])
    return trained_and_scored(cfg, out)


def robot_start(root: str, start: tuple[tuple[str, ...], bool], seed: int, sft_steps: int, twin_steps: int,
                report: bool) -> tuple[str, dict] | None:
    """The robot run's start: the SFT start of ``start``'s demo domains, then (with its flag: TwinRL's part 2)
    ``experiment=twin_pixels`` from it for ``twin_steps`` steps of 8 worlds in the twin (trained once); its path and
    its success in each domain. None for a twin start not there with ``report``."""
    domains, twin_rl = start
    sft, rates = sft_start(root, domains, seed, sft_steps)
    if not twin_rl:
        return sft, rates
    out = os.path.join(root, f"twin_rl_{'+'.join(domains)}_s{seed}")
    if report and not os.path.isdir(os.path.join(out, "final_policy")):
        return None
    cfg = compose_train_config(["experiment=twin_pixels", f"init_from={sft}", f"experiment.seed={seed}",
                                f"experiment.total_env_steps={twin_steps}", "experiment.progress=false",
                                f"experiment.output_dir={out}"])
    return trained_and_scored(cfg, out)


def episode_outcomes(run_dir: str) -> tuple[list[bool], list[bool], dict]:
    """Each ended episode's success and whether the person helped, in order, and (in the dict) the loop period stats
    and updates at the last and ``eval_curve``, the evaluations' success (one per EVAL_EVERY episodes), from the run's
    ``robot/*`` scalars."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = glob.glob(os.path.join(run_dir, "**", "events*"), recursive=True)
    if len(files) != 1:
        raise RuntimeError(f"{run_dir} holds {len(files)} tensorboard event files, one run's outcomes expected")
    events = EventAccumulator(files[0], size_guidance={"scalars": 0})
    events.Reload()
    scalars = {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    timing = {key: scalars[f"robot/{key}"][-1] for key in ("period_p50_ms", "period_p99_ms", "updates")}
    timing["eval_curve"] = scalars.get("robot/eval_success", [])
    if len(timing["eval_curve"]) != len(scalars["robot/success"]) // EVAL_EVERY:
        raise RuntimeError(f"{run_dir} holds {len(timing['eval_curve'])} evaluations in "
                           f"{len(scalars['robot/success'])} episodes, not one per {EVAL_EVERY}: a run of other "
                           "settings; move it away and run again")
    return [v > 0.5 for v in scalars["robot/success"]], [v > 0.5 for v in scalars["robot/assisted"]], timing


def robot_run(root: str, variant: str, seed: int, start: str, robot_steps: int, report: bool) -> dict | None:
    """One robot run (reused when its summary is there) and its row; None for a run not there with ``report``."""
    out = os.path.join(root, f"{variant}_s{seed}")
    if report and not os.path.isfile(os.path.join(out, "summary.json")):
        return None
    cfg = compose_train_config([*ROBOT, *PIXELS, *VARIANTS[variant][1], f"init_from={start}", f"robot.seed={seed}",
                                f"experiment.seed={seed}", f"experiment.total_env_steps={robot_steps}",
                                f"experiment.output_dir={out}"])
    if not os.path.isfile(os.path.join(out, "summary.json")):
        final = make_trainer(cfg).train()
        if "interrupted_at" in final:
            raise RuntimeError(f"the robot run in {out} stopped at episode {final['interrupted_at']}: see its log")
    summary = json.load(open(os.path.join(out, "summary.json")))
    seconds, steps = summary["wall_clock_s"], summary["env_steps"]  # evaluations and mining included
    from policies.base import from_pretrained
    final = success_by_domain(cfg, from_pretrained(os.path.join(out, "final_policy")))
    successes, assisted, timing = episode_outcomes(out)
    own = [s for s, helped in zip(successes, assisted) if not helped]
    after = [s for s, helped in zip(successes[PERSON_EPISODES:], assisted[PERSON_EPISODES:]) if not helped]
    curve = [float(np.mean(after[i - WINDOW:i])) for i in range(WINDOW, len(after) + 1, 10)]
    evaluated = timing["eval_curve"]
    return {"variant": variant, "seed": seed, "sft_demos": list(VARIANTS[variant][0][0]),
            "twin_rl": VARIANTS[variant][0][1], "robot_steps": steps, "episodes": len(successes),
            "assisted": int(sum(assisted)),
            "eval_episodes_to_50": next((EVAL_EVERY * (i + 1) for i, v in enumerate(evaluated) if v >= 0.5), None),
            "eval_episodes_to_90": next((EVAL_EVERY * (i + 1) for i, v in enumerate(evaluated) if v >= 0.9), None),
            "own_episodes_to_50": episodes_after_person_to(successes, assisted, 0.5),
            "own_episodes_to_90": episodes_after_person_to(successes, assisted, 0.9),
            "last_window": float(np.mean(own[-WINDOW:])), "own_curve_every_10": curve,
            "final_shifted": final["shifted"], "final_twin": final["shifted_twin"], "final_sim": final["sim"],
            "seconds": seconds, **timing}


def main() -> None:
    """The SFT starts, every variant and seed; print the tables and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/work/data/robot_rl_pixels")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--variants", nargs="+", default=["rl", "twinrl"], choices=list(VARIANTS))
    parser.add_argument("--robot-steps", type=int, default=10000)
    parser.add_argument("--sft-steps", type=int, default=3000)
    parser.add_argument("--twin-steps", type=int, default=8000, help="env-steps of RL in the twin (TwinRL part 2)")
    parser.add_argument("--report", action="store_true", help="tabulate the robot runs already in --root, start none")
    parser.add_argument("--out", default="benchmarks/results/robot_rl_pixels.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.root, exist_ok=True)
    starts = {(start, seed): robot_start(args.root, start, seed, args.sft_steps, args.twin_steps, args.report)
              for start in dict.fromkeys(VARIANTS[variant][0] for variant in args.variants) for seed in args.seeds}
    starts = {key: value for key, value in starts.items() if value is not None}
    rows = [robot_run(args.root, variant, seed, starts[VARIANTS[variant][0], seed][0], args.robot_steps, args.report)
            for seed in args.seeds for variant in args.variants  # seed by seed: every variant of one seed first
            if (VARIANTS[variant][0], seed) in starts]
    rows = [row for row in rows if row is not None]
    print(f"\nthe robot runs' starts: pixel SFT, then {args.twin_steps} steps of RL in the twin where marked "
          "(deterministic success, 64 episodes each)\n"
          "| SFT demos | RL in the twin | seed | sim | shifted | shifted_twin |\n|---|---|---|---|---|---|")
    for ((domains, twin_rl), seed), (_, rates) in starts.items():
        print(f"| {' + '.join(domains)} | {'yes' if twin_rl else 'no'} | {seed} | {rates['sim']:.3f} | "
              f"{rates['shifted']:.3f} | {rates['shifted_twin']:.3f} |")
    print(f"\nrobot runs on the shifted twin at 20 Hz (new runs: {args.robot_steps} robot steps); episodes to X = the "
          f"first evaluation (every {EVAL_EVERY} episodes, 64 uniform scenes) at X; own = the policy's success over "
          f"its last {WINDOW} unassisted episodes")
    print("| variant | seed | robot steps | episodes (assisted) | episodes to 50% | to 90% | own to 90% | "
          "own, last 20 | final: shifted | twin | sim | loop p50 / p99 ms | updates | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['seed']} | {r['robot_steps']} | {r['episodes']} ({r['assisted']}) | "
              f"{r['eval_episodes_to_50']} | "
              f"{r['eval_episodes_to_90']} | {r['own_episodes_to_90']} | {r['last_window']:.2f} | "
              f"{r['final_shifted']:.3f} | {r['final_twin']:.3f} | {r['final_sim']:.3f} | "
              f"{r['period_p50_ms']:.1f} / {r['period_p99_ms']:.1f} "
              f"| {r['updates']:.0f} | {r['seconds']:.0f} |")
    write_results(args.out, {"robot_steps": args.robot_steps, "window": WINDOW, "eval_every": EVAL_EVERY,
                             "twin_steps": args.twin_steps,
                             "starts": [{"demos": list(domains), "twin_rl": twin_rl, "seed": seed, **rates}
                                        for ((domains, twin_rl), seed), (_, rates) in starts.items()], "runs": rows})


if __name__ == "__main__":
    main()

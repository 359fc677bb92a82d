"""The commands a user is shown (README bash blocks, each CLI's ``--help`` examples), and a runner that executes
one of them in this process as written, plus overrides that shrink its budget to seconds."""

from __future__ import annotations

import os
import re
import shlex
import sys

from hydra.core.global_hydra import GlobalHydra

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = ("embodied-train", "embodied-eval", "embodied-deploy", "embodied-teleop", "embodied-record-demos")

# Appended to every command (later overrides win), so each runs for seconds; never changes what a command selects.
SFT_TINY = ["algo.sft_steps=2", "algo.sft_eval_interval=0"]  # settings only algo=sft has
TINY = {
    "embodied-train": ["experiment.total_env_steps=1", "experiment.checkpoint_interval=1", "algo.rollout_steps=8",
                       "experiment.eval_episodes=2", "experiment.eval_num_envs=2", "experiment.eval_interval=0",
                       "algo.batch_size=4", "algo.groups_per_batch=2", "algo.group_size=2", "experiment.progress=false"],
    "embodied-eval": ["experiment.eval_episodes=2", "experiment.eval_num_envs=2"],
    "embodied-deploy": ["episodes=1", "max_steps=4", "reset_time_s=0"],
    "embodied-teleop": ["episodes=1", "episode_time_s=0.3", "reset_time_s=0", "preview_every_s=0"],
    "embodied-record-demos": ["--episodes", "2", "--num-envs", "2"],
}


def shown_commands() -> list[str]:
    """Every ``embodied-*`` command line of the README's bash blocks, then of each CLI's docstring examples,
    in order, without comments (continuation lines joined)."""
    from embodied.cli import deploy, record_demos, teleop, train
    from embodied.cli import eval as eval_cli

    with open(os.path.join(ROOT, "README.md")) as f:
        texts = re.findall(r"```bash\n(.*?)```", f.read(), re.S)
    texts += [module.__doc__.split("Examples:")[1] for module in (train, record_demos, deploy, teleop, eval_cli)]
    commands = ["embodied-train"]  # what `make train` runs, first: later commands resume or deploy its run
    for text in texts:
        for line in text.replace("\\\n", " ").splitlines():
            line = " ".join(line.split(" #")[0].split())
            line = re.sub(r"^torchrun .*?-m embodied\.cli\.train", "embodied-train", line)  # one process here
            program = re.sub(r"^([A-Z_]+=\S+\s+)*", "", line).split(" ")[0]
            if program in PROGRAMS and line not in commands:
                commands.append(line)
    return commands


def run_command(line: str, monkeypatch) -> str:
    """Run ``line`` in this process with the tiny budget; returns "ok" or the one-line error it exited with."""
    words = shlex.split(line)
    while re.fullmatch(r"[A-Z_]+=\S+", words[0]):
        name, _, value = words.pop(0).partition("=")
        monkeypatch.setenv(name, value)
    program, args = words[0], words[1:]
    if "--help" in args or "-h" in args:
        tiny = []
    elif program == "embodied-train":
        tiny = TINY[program] + train_budget(args)
    else:
        tiny = TINY[program]
    monkeypatch.setattr(sys, "argv", [program, *args, *tiny])
    GlobalHydra.instance().clear()
    try:
        if program == "embodied-record-demos":
            from embodied.cli.record_demos import main
            main(sys.argv[1:])
        else:
            module = __import__(f"embodied.cli.{program.split('-', 1)[1]}", fromlist=["main"])
            module.main()
    except SystemExit as done:
        if done.code in (None, 0):
            return "ok"
        return str(done.code)
    return "ok"


def train_budget(args: list[str]) -> list[str]:
    """Four envs per env worker and stage; SFT steps, rendered scenes, RL-Co's SFT stage, critic warm-up, off-policy
    random steps, expert episodes and pre-training shrunk where the composed config has them; a robot run: one
    episode and a few steps (``experiment=vla_sft`` picks algo=sft without saying so)."""
    from hydra import compose, initialize_config_dir

    from embodied.cli.train import _config_path

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=_config_path(), version_base=None):
        cfg = compose("train", overrides=args)
    workers = cfg.dist.num_env_workers if cfg.dist.backend != "single" else 1
    if cfg.robot:  # one robot, unpaced, for one Reach episode and a few steps (a checkpoint to resume from)
        return ["env.num_envs=1", "experiment.total_env_steps=60", "robot_rl.control_hz=0", "algo.learning_starts=0"] + \
            (["algo.demo_episodes=2"] if cfg.algo.get("demo_episodes") else [])
    return [f"env.num_envs={4 * workers * cfg.dist.pipeline_stages}"] + \
        (SFT_TINY if "sft_steps" in cfg.algo else []) + \
        (["data.scene_frames=8"] if cfg.data.scene_frames else []) + \
        (["algo.sft_stage_steps=2"] if cfg.algo.sft_stage_steps else []) + \
        (["algo.critic_warmup_iterations=1"] if cfg.algo.critic_warmup_iterations else []) + \
        (["algo.learning_starts=0"] if "learning_starts" in cfg.algo else []) + \
        (["algo.demo_episodes=2"] if cfg.algo.get("demo_episodes") else []) + \
        (["algo.pretrain_steps=2"] if cfg.algo.get("pretrain_steps") else [])

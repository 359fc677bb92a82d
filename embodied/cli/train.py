"""``embodied-train``: train a policy in simulation (Hydra config; zero overrides train Reach with PPO on CPU).

Examples:
  embodied-train                                   # the embedded default: Reach, PPO, ~25 s on 2 cores
  embodied-train env=push_cube                     # PushCube with PPO
  embodied-train algo=grpo env.reward_mode=sparse  # GRPO on sparse reward
  embodied-train experiment.total_env_steps=200000 resume=true  # continue the default run (Ctrl-C saves one)
  embodied-train algo=sft env=pick_cube data.paths=[demos/pick_cube] experiment.name=PickCube_sft  # behaviour cloning
  embodied-train env=lang_place_cube algo.anchor_coef=0.1 data.anchor_paths=[demos/real]  # PPO + SFT anchor
  embodied-train experiment=residual base=runs/PickCube_sft/final_policy env=pick_cube  # residual RL on a base
  embodied-train experiment=rl_co env=lang_place_cube data.paths=[demos/real,demos/sim] data.weights=[0.5,0.5] \\
      data.anchor_paths=[demos/real,demos/sim] data.anchor_weights=[0.5,0.5]  # RL-Co: SFT, then PPO + anchor
  embodied-train env=push_cube env.backend=mujoco_warp env.num_envs=4096 experiment.device=cuda  # all on a GPU
  embodied-train robot=sim_twin algo=sac policy=tanh_mlp env.num_envs=1 experiment.name=Reach_twin  # RL on a robot
`embodied-train --list` prints every registered name (tasks, simulator backends, algorithms, collectors, advantages,
losses, policies, heads, encoders, robots, cameras, teleop devices) with the setting that picks it.
Outputs go to runs/<experiment.name>/ (tensorboard in tb/, videos in videos/, checkpoints/, final_policy/); a new
run refuses a folder that holds another run (resume=true continues it). Ctrl-C saves a checkpoint and the policy.
"""

from __future__ import annotations

import logging
import os
import sys

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from embodied.algorithms import ALGORITHMS
from embodied.cli.console import print_help, print_registered, quiet_third_party_logs
from embodied.config.strict import to_typed
from embodied.config.schema import TrainConfig

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")
ConfigStore.instance().store(name="train_schema", node=TrainConfig)
for _name in ALGORITHMS.names():  # configs/algo/<name>.yaml starts from its algorithm's config dataclass
    ConfigStore.instance().store(group="algo_schema", name=_name, node=ALGORITHMS.lookup(_name).config)
log = logging.getLogger("embodied-train")  # Hydra sends it to the terminal and to <run>/hydra/train.log


def compose_train_config(overrides: list[str]) -> TrainConfig:
    """The TrainConfig ``embodied-train <overrides>`` would run, composed without starting it (benchmarks)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=_config_path(), version_base=None):
        return OmegaConf.to_object(compose("train", overrides=overrides))


def _run(cfg: DictConfig) -> None:
    from embodied.runner.loops import make_trainer

    typed: TrainConfig = to_typed(cfg, TrainConfig, "embodied-train")
    try:
        trainer = make_trainer(typed)
    except (ValueError, KeyError, OSError, ImportError, RuntimeError) as error:  # a bad value, a missing or taken
        # path, a missing optional package or simulator device: say which, no traceback
        sys.exit(f"embodied-train: {error}")
    metrics = trainer.train()
    if "interrupted_at" in metrics:
        saved = os.path.join(typed.experiment.output_dir, "final_policy")
        sys.exit(f"embodied-train: interrupted at step {metrics['interrupted_at']}; {saved} saved" +
                 (" with a checkpoint: resume=true continues the run" if trainer.resumable else
                  f" (algo={typed.algo.name} runs do not resume)"))
    if not metrics:  # a data-parallel rank other than 0: rank 0 evaluates and saves
        return
    log.info(f"final eval over {metrics['episodes']} episodes: success_once={metrics['success_once']:.3f} "
             f"success_at_end={metrics['success_at_end']:.3f} return={metrics['episode_return']:.2f}")
    log.info(f"policy saved to {os.path.join(typed.experiment.output_dir, 'final_policy')}")
    log.info(f"summary (results, timings, where videos and logs went) in {trainer.summary_path}")


def main() -> None:
    """Console entry point; ``--help`` prints this module's docstring, the config groups and the composed config."""
    quiet_third_party_logs()
    if "--list" in sys.argv[1:]:
        print_registered()
        return
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        print_help(__doc__, _config_path(), "train", [a for a in sys.argv[1:] if a not in ("-h", "--help")])
        return
    hydra.main(version_base=None, config_path=_config_path(), config_name="train")(_run)()


def _config_path() -> str:
    """configs/ of the source tree, or the copy installed inside the package."""
    if os.path.isdir(CONFIG_DIR):
        return CONFIG_DIR
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


if __name__ == "__main__":
    main()

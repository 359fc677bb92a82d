"""The training loop an algorithm declares (``Algorithm.trainer``): the RL loop, the dataset (SFT) loop or the
off-policy (replay buffer) loop; with ``robot=<name>``, the off-policy learner on that robot."""

from __future__ import annotations

from embodied.algorithms import algorithm_of
from embodied.config.schema import TrainConfig
from embodied.runner.offpolicy import OffPolicyTrainer
from embodied.runner.sft import SFTTrainer
from embodied.runner.trainer import Trainer

LOOPS = {"rl": Trainer, "sft": SFTTrainer, "offpolicy": OffPolicyTrainer}


def make_trainer(cfg: TrainConfig):
    """The trainer of ``cfg.algo.name``'s algorithm, built (and so validated) for ``cfg``; a robot run's when
    ``cfg.robot`` names one."""
    if cfg.robot:
        from embodied.runner.robot import RobotRLRun

        return RobotRLRun(cfg)
    return LOOPS[algorithm_of(cfg.algo).trainer](cfg)

"""SFT (behaviour cloning) on LeRobot datasets, declared as an algorithm: its settings and ``Algorithm``. The
steps themselves are the policy's ``sft_loss`` (embodied/runner/sft_steps.py); the loop is embodied/runner/sft.py."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from embodied.algorithms.config import AlgoConfig
from embodied.algorithms.registry import Algorithm, register_algorithm

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}  # algo.precision -> the autocast dtype of the forward pass


@dataclass
class SFTConfig(AlgoConfig):
    """SFT's settings (``algo=sft data.paths=[<dataset>, ...]``)."""

    name: str = "sft"
    sft_steps: int = 2000  # gradient steps
    sft_eval_interval: int = 500  # steps between evaluations in simulation (0: only at the end)
    # fp32 | bf16: the forward pass under bfloat16 autocast (weights, optimiser and evaluation stay fp32). Fast where
    # the hardware has bf16 units (CPUs with AMX or AVX512-BF16, GPUs from Ampere on); slower than fp32 elsewhere.
    precision: str = "fp32"


def sft_checks(cfg) -> list[tuple[bool, str]]:
    """Datasets to learn from, a step count, no resume."""
    return [
        (bool(cfg.data.paths), "algo=sft needs data.paths=[<LeRobot dataset dir>, ...]"),
        (cfg.algo.sft_steps >= 1, f"algo.sft_steps must be >= 1, got {cfg.algo.sft_steps}"),
        (cfg.algo.precision in PRECISIONS, f"algo.precision must be one of {sorted(PRECISIONS)}, got "
                                           f"{cfg.algo.precision!r}"),
        (not cfg.resume, "resume=true is not supported for algo=sft yet: start a new run (SFT runs are short)"),
        (cfg.experiment.stop_at_success is None, "experiment.stop_at_success ends RL runs; algo=sft runs its "
                                                 "algo.sft_steps: set experiment.stop_at_success=null"),
        (cfg.experiment.time_limit_s is None, "experiment.time_limit_s ends RL runs; algo=sft runs its "
                                              "algo.sft_steps: set experiment.time_limit_s=null"),
    ]


register_algorithm(Algorithm("sft", SFTConfig, trainer="sft", checks=sft_checks,
                             summary="supervised fine-tuning (behaviour cloning) on LeRobot datasets"))

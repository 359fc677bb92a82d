"""Training algorithms, one file each (ppo.py, grpo.py, opd.py, sft.py): an ``Algorithm`` registered by name,
its config dataclass and its loss; advantage estimators in advantages.py, shared loss pieces in losses.py. The
registries import every module of this package before answering a name they do not hold, so a new algorithm's
file needs no import here."""

from embodied.algorithms.config import AlgoConfig
from embodied.algorithms.registry import (ALGORITHMS, Algorithm, algorithm_of, get_advantage, get_loss,
                                          register_advantage, register_algorithm, register_loss)

__all__ = ["ALGORITHMS", "AlgoConfig", "Algorithm", "algorithm_of", "get_advantage", "get_loss",
           "register_advantage", "register_algorithm", "register_loss"]

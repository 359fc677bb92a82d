"""WSRL (Zhou et al. 2025, "Efficient Online RL Fine-Tuning Need Not Retain Offline Data") declared as an algorithm:
Cal-QL pre-training on the demonstrations (``algo.pretrain_steps``), a warm-up of ``algo.learning_starts`` env-steps
played by the pre-trained policy with no updates, then SAC on the online buffer alone: the demonstrations are not
sampled again (``algo.demo_ratio=0``). ``algo.learning_starts=0`` is the ablation without the warm-up, where the
first updates see a handful of online transitions and the paper reports the pre-trained success collapsing. On
PickCube the warm-up alone did not keep it; the online actor is also pulled towards the frozen pre-trained one for its
first 10,000 env-steps (``algo.pretrained_anchor_coef``; README, "Off-policy RL").
The losses and the loop are SAC's and Cal-QL's (sac.py, calql.py, embodied/runner/offpolicy.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from embodied.algorithms.registry import Algorithm, register_algorithm
from embodied.algorithms.sac import SACConfig, sac_checks


@dataclass
class WSRLConfig(SACConfig):
    """WSRL's settings (``algo=wsrl``): SAC's, with pre-training on 20 demonstrations and a warm-up."""

    name: str = "wsrl"
    demo_episodes: int = 20
    demo_ratio: float = 0.0  # the demonstrations serve the pre-training only
    pretrain_steps: int = 5000
    learning_starts: int = 5000  # the warm-up: env-steps of the pre-trained policy before the first online update
    utd_ratio: float = 1.0
    actor_q: str = "mean"
    # 5,000 pre-training steps of Cal-QL alone left PickCube's actor at 0.03 (20 demos, seed 1); cloning the demos
    # beside it gives 0.14-0.31. A cloned tanh policy is precise (entropy near -13 on PickCube's 4 action dims), so
    # the entropy target sits lower than RLPD's and the temperature starts small: from 1.0 it rose to 2.4 in
    # pre-training and the online phase began by maximising entropy
    bc_coef: float = 1.0
    # discount 0.8 as RLPD's (with 0.99 PickCube's policies stalled a few cm short of the goal); Q then spans about 5
    # rewards instead of 100, so the temperature starts 10x smaller than it did with 0.99 (0.1) and the entropy target
    # sits near the cloned policy's: with 0.8 at 0.1 and -2|A| the first online updates drove the entropy up and the
    # success to 0.031 at 8,000 env-steps even with the anchor; at 0.01 and -3|A| the lowest in the first 10,000 was
    # the start (0.141 / 0.219) and 57,600 ended at 0.547 / 0.672 (0.375 / 0.438 before; seeds 1 / 2)
    gamma: float = 0.8
    target_entropy_scale: float = 3.0
    init_temperature: float = 0.01
    backup_entropy: bool = False
    # the online phase's first updates took the cloned actor off its actions (0.219 -> 0.016 at 8,000 env-steps, seed
    # 1) whatever the temperature, critic-only updates or learning rate; pulled towards the frozen pre-trained actor,
    # fading over 10,000 env-steps, it stays at or above its start there on seeds 1 and 2 (README, "Off-policy RL")
    pretrained_anchor_coef: float = 1.0


def wsrl_checks(cfg) -> list[tuple[bool, str]]:
    """SAC's checks, and a pre-training to warm-start from."""
    return sac_checks(cfg) + [(cfg.algo.pretrain_steps > 0,
                               "algo=wsrl fine-tunes a pre-trained policy: set algo.pretrain_steps >= 1")]


register_algorithm(Algorithm("wsrl", WSRLConfig, trainer="offpolicy", checks=wsrl_checks,
                             summary="Cal-QL pre-training on demonstrations, a warm-up, then SAC without them"))

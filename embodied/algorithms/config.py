"""``AlgoConfig``: the hyper-parameters every algorithm of the RL loop shares (PPO's defaults); an algorithm with
settings of its own subclasses it in its own file (``OPDConfig``, ``SFTConfig``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class AlgoConfig:
    """Algorithm = collector + advantage + loss, each picked by name; plus their hyper-parameters."""

    name: str = "ppo"  # the registered algorithm (embodied/algorithms/<name>.py); choose it with algo=<name>
    collector: str = "steps"  # "steps" (fixed-length rollouts) or "groups" (episode groups from identical resets)
    advantage: str = "gae"
    loss: str = "ppo"
    rollout_steps: int = 50
    gamma: float = 0.95
    gae_lambda: float = 0.95
    learning_rate: float = 3e-4
    anneal_lr: bool = False  # decay the learning rate linearly to 0 over the run (RL iterations or SFT steps)
    update_epochs: int = 8
    num_minibatches: int = 4
    clip_low: float = 0.2
    clip_high: float = 0.2
    dual_clip: Optional[float] = None
    value_clip: Optional[float] = None  # e.g. 0.2: clip value updates around the rollout's values (CleanRL)
    huber_delta: Optional[float] = None
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    normalize_advantages: bool = True
    target_kl: Optional[float] = 0.1
    max_grad_norm: float = 0.5
    logprob_granularity: str = "action"  # token | action | chunk
    # the groups collector (algo.collector=groups)
    group_size: int = 8
    groups_per_batch: int = 8
    dynamic_sampling: bool = True
    max_sampling_rounds: int = 4
    # a KL term to a reference policy (losses that have one: grpo)
    kl_coef: float = 0.0
    ref_reset_interval: int = 0  # updates between resets of the KL reference to the current policy (0: never)
    # SFT anchoring inside RL: loss = RL loss + anchor_coef * SFT loss on data.anchor_paths
    batch_size: int = 64  # demonstrations per SFT step and per anchor term
    # algo=sft evaluates and saves a moving average of the weights (e.g. 0.999; 0: the last weights); here, not in
    # SFTConfig, because a policy's config may choose it (policy=vla does) whatever the algorithm; RL does not average
    ema_decay: float = 0.0
    anchor_coef: float = 0.0
    # false: the anchor pulls only the action mean to the demonstrations; the std (parameters named log_std)
    # learns from the RL loss alone, so a Gaussian NLL on well-fitted demos does not shrink exploration
    anchor_fits_std: bool = True
    # RL from a demonstration-trained policy (RL-Co): stage 1 SFT inside the RL run, then a critic warm-up
    sft_stage_steps: int = 0  # RL runs: SFT steps on data.paths (mixed by data.weights) before the first rollout
    sft_learning_rate: float = 3e-4  # learning rate of that SFT stage
    critic_warmup_iterations: int = 0  # first RL iterations update only the value function (actor held fixed)
    # true: keep the observation statistics a run starts with (e.g. an SFT policy's dataset statistics) instead
    # of folding every rollout into them; needed for a critic warm-up to hold the actor's behaviour exactly
    freeze_normalizer: bool = False

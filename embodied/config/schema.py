"""Structured config schema (Hydra/OmegaConf dataclasses): every field typed, validated before training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from omegaconf import OmegaConf

from embodied.algorithms.config import AlgoConfig
from embodied.algorithms.registry import (ALGORITHMS, COLLECTORS, LOSSES, algorithm_of, combination_problem,
                                          get_loss)
from embodied.robot_rl.config import RobotRLConfig, robot_rl_checks
from embodied.rollout.device_bridge import learner_device


@dataclass
class EnvConfig:
    """Which simulator and task, and how many worlds."""

    backend: str = "mujoco"
    task: str = "Reach"
    num_envs: int = 32
    controller: str = "ee_delta_pos"
    reward_mode: str = "dense"
    # whether an episode ends at its first success; null: the task's choice (a suite's end, the others run on). Robot
    # runs (robot=) set sparse rewards and true: their demonstrations and evaluation are scored as the robot is
    terminate_on_success: Optional[bool] = None
    max_episode_steps: Optional[int] = None
    cameras: list = field(default_factory=list)
    image_size: list = field(default_factory=lambda: [64, 64])
    num_threads: int = 0
    domain: str = "sim"  # sim | shifted (the "real" domain: colours, camera, light, friction) | shifted_twin (its twin)
    arm: str = "panda"  # panda | ur5e | xarm7 | xarm6 (sims/arms/; mujoco backends)
    # task TabletopSuite (env=tabletop_suite): the suite (tabletop | tabletop_spatial | _object | _goal | _long) and
    # split (train | paraphrase: held-out wordings | composition: held-out colour x goal pairings)
    suite: Optional[str] = None
    split: str = "train"
    # camera images (mujoco backends): full (mujoco.Renderer's images bit for bit, a frame at a time) | fast (fewer
    # facets on round geoms, a batch drawn as tiles of one framebuffer) | fastest (also no multisampling): about
    # 4.5x / 9x the frames/s of full on this machine (README "Camera rendering"); null: the backend's default (full)
    render_quality: Optional[str] = None


@dataclass
class PolicyConfig:
    """Which policy and its architecture options (passed to the policy's constructor)."""

    name: str = "mlp"  # mlp | vla
    chunk_size: int = 1
    n_action_steps: int = 0  # actions of each chunk executed before the policy predicts again (0: the whole chunk)
    init_log_std: float = -1.0
    # mlp
    hidden: list = field(default_factory=lambda: [256, 256])
    obs_keys: list = field(default_factory=lambda: ["state", "privileged"])
    # residual (policy=residual, or experiment=residual): correction scale in normalised action units
    residual_scale: float = 0.1
    # vla: encoders by registry name (keypoints | mobilenet_v2_imagenet | hf | tiny; minilm | hf | tiny), optional
    # freeze; configs/policy/vla.yaml holds the pixel defaults of policy=vla (these are the tiny test towers)
    cameras: list = field(default_factory=lambda: ["front"])
    vision: dict = field(default_factory=lambda: {"name": "tiny", "freeze": False})
    language: dict = field(default_factory=lambda: {"name": "tiny", "freeze": False})
    fusion: dict = field(default_factory=lambda: {"arch": "llama", "hidden_size": 128, "layers": 2, "heads": 4,
                                                   "intermediate_size": 256})
    head: dict = field(default_factory=lambda: {"name": "gaussian"})  # gaussian | token | flow
    detach_value: bool = False
    # vla: what the value function reads: backbone (the fused query outputs) | privileged (an MLP on proprioception
    # and the simulator's task state: an asymmetric critic; simulation only, the actor still reads pixels)
    critic: str = "backbone"
    # vla, pixel_tanh: SFT also predicts the dataset's task state (environment_state) with this weight
    aux_state_coef: float = 0.0
    # vla, pixel_tanh: [first, stop) of the task state that loss scores; null: the part the task declares
    # (Task.goal_state_dims: LangPlaceCube leaves out the cube poses), or all of it
    aux_state_dims: Optional[list] = None
    random_shift: int = 0  # vla: SFT shifts demonstration images by up to this many pixels (trained vision tower)


@dataclass
class DataConfig:
    """LeRobot v3.0 datasets: ``paths`` (mixed by ``weights``) for algo=sft, ``anchor_paths`` for the RL anchor."""

    paths: list = field(default_factory=list)
    weights: list = field(default_factory=list)  # one per path; empty = equal weights
    anchor_paths: list = field(default_factory=list)
    anchor_weights: list = field(default_factory=list)
    # algo=sft: rendered scenes (fresh resets, the arm pushed at random; no actions) whose task state trains the
    # policy's auxiliary head beside the demonstrations (policy=vla; embodied/data/scenes.py); 0: none
    scene_frames: int = 0
    scene_batch: int = 32  # scenes per SFT step
    carried_scenes: bool = False  # every other scene wave: the expert's arm part of the way, the markers moved elsewhere


@dataclass
class ExperimentConfig:
    """Run length, seeds, evaluation, logging and checkpoints."""

    name: str = "reach_ppo"
    seed: int = 1
    total_env_steps: int = 60_000
    eval_interval: int = 10  # iterations between evaluations (0: only at the end)
    eval_episodes: int = 64
    eval_num_envs: int = 32
    eval_seed: int = 10_000
    stop_at_success: Optional[float] = None  # RL runs end at the first evaluation whose success_once reaches this
    # RL runs end after the first iteration that finishes this many seconds after train() began (evaluations and
    # an SFT stage count; a resumed run starts a new budget), then evaluate as at the end of their env-steps
    time_limit_s: Optional[float] = None
    video: bool = True  # an mp4 of evaluation episode 0 per evaluation (64 px, a few KB); false turns it off
    video_cameras: list = field(default_factory=lambda: ["front"])
    checkpoint_interval: int = 10
    output_dir: str = "runs/${experiment.name}"
    progress: bool = True
    torch_threads: int = 1  # while collecting (MuJoCo's threads are busy then)
    update_threads: int = 0  # while updating, when the simulator is idle; 0: every core
    device: str = "cpu"  # the learner (policy, rollouts, updates): cpu | cuda | cuda:N | auto (cuda when present)


@dataclass
class DistConfig:
    """Where the envs run: this process (single), env workers here (local) or Ray actors (ray); 2-stage pipelining."""

    backend: str = "single"  # single | local (workers one after another here: Ray's reference) | ray
    num_env_workers: int = 1  # local / ray: env.num_envs is split evenly over the workers
    pipeline_stages: int = 1  # 2: half the envs simulate while the policy infers for the other half
    address: str = ""  # ray: cluster address; empty: RAY_ADDRESS, else a local cluster
    num_cpus: int = 0  # ray: size of the local cluster it starts; 0: every core
    max_restarts: int = 3  # ray: restarts of a crashed env worker before the run fails


@dataclass
class TrainConfig:
    """Top-level config of ``embodied-train``."""

    env: EnvConfig = field(default_factory=EnvConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    dist: DistConfig = field(default_factory=DistConfig)
    resume: bool = False
    base: str = ""  # policy=residual: the frozen base policy (a save_pretrained directory)
    # robot=<configs/robot/ name>: train on that robot through the actor-learner loop (embodied/robot_rl/); {}: in
    # simulation
    robot: dict = field(default_factory=dict)
    robot_rl: RobotRLConfig = field(default_factory=RobotRLConfig)
    init_from: str = ""  # start from these weights (a save_pretrained directory of the same policy type)


def as_dict(section) -> dict:
    """A config section (dataclass or OmegaConf node) as plain Python containers."""
    if dataclasses.is_dataclass(section) and not isinstance(section, type):
        return dataclasses.asdict(section)
    return OmegaConf.to_container(section, resolve=True)


def dist_checks(cfg: TrainConfig) -> list[tuple[bool, str]]:
    """(ok, message) checks of the ``dist`` section."""
    d, workers = cfg.dist, max(cfg.dist.num_env_workers, 1)
    return [
        (d.backend in ("single", "local", "ray"), f"dist.backend must be single, local or ray, got {d.backend!r}"),
        (d.num_env_workers >= 1, f"dist.num_env_workers must be >= 1, got {d.num_env_workers}"),
        (d.backend != "single" or d.num_env_workers == 1,
         f"dist.num_env_workers={d.num_env_workers} needs dist=ray (or dist.backend=local)"),
        (cfg.env.num_envs % (workers * d.pipeline_stages) == 0,
         f"env.num_envs={cfg.env.num_envs} must split evenly over dist.num_env_workers={d.num_env_workers} "
         f"x dist.pipeline_stages={d.pipeline_stages}"),
        (d.pipeline_stages in (1, 2), f"dist.pipeline_stages must be 1 or 2, got {d.pipeline_stages}"),
        (d.max_restarts >= 0, f"dist.max_restarts must be >= 0, got {d.max_restarts}"),
    ]


def validate(cfg: TrainConfig) -> None:
    """Raise ValueError naming the bad value and the fix; called before anything is built."""
    from sims.mujoco.render import RENDER_QUALITIES  # (imports MuJoCo: not at module import)

    checks = [
        (cfg.env.num_envs >= 1, f"env.num_envs must be >= 1, got {cfg.env.num_envs}"),
        (cfg.algo.rollout_steps >= 1, f"algo.rollout_steps must be >= 1, got {cfg.algo.rollout_steps}"),
        (0 < cfg.algo.gamma <= 1, f"algo.gamma must be in (0, 1], got {cfg.algo.gamma}"),
        (0 <= cfg.algo.gae_lambda <= 1, f"algo.gae_lambda must be in [0, 1], got {cfg.algo.gae_lambda}"),
        (cfg.algo.learning_rate > 0, f"algo.learning_rate must be > 0, got {cfg.algo.learning_rate}"),
        (cfg.algo.num_minibatches >= 1, f"algo.num_minibatches must be >= 1, got {cfg.algo.num_minibatches}"),
        (cfg.algo.clip_low > 0 and cfg.algo.clip_high > 0, "algo.clip_low and algo.clip_high must be > 0"),
        (cfg.algo.dual_clip is None or cfg.algo.dual_clip > 1, f"algo.dual_clip must be > 1, got {cfg.algo.dual_clip}"),
        (cfg.algo.logprob_granularity in ("token", "action", "chunk"),
         f"algo.logprob_granularity must be token|action|chunk, got {cfg.algo.logprob_granularity!r}"),
        (cfg.experiment.total_env_steps > 0, f"experiment.total_env_steps must be > 0, got {cfg.experiment.total_env_steps}"),
        (cfg.algo.anchor_coef >= 0, f"algo.anchor_coef must be >= 0, got {cfg.algo.anchor_coef}"),
        (cfg.algo.anchor_coef == 0 or cfg.data.anchor_paths,
         "algo.anchor_coef > 0 needs data.anchor_paths=[<LeRobot dataset dir>, ...]"),
        (cfg.algo.sft_stage_steps >= 0, f"algo.sft_stage_steps must be >= 0, got {cfg.algo.sft_stage_steps}"),
        (cfg.algo.sft_stage_steps == 0 or cfg.data.paths,
         "algo.sft_stage_steps > 0 needs data.paths=[<LeRobot dataset dir>, ...] (the stage-1 demonstrations)"),
        (cfg.algo.critic_warmup_iterations >= 0,
         f"algo.critic_warmup_iterations must be >= 0, got {cfg.algo.critic_warmup_iterations}"),
        (cfg.algo.critic_warmup_iterations == 0 or "old_values" in get_loss(cfg.algo.loss).needs,
         f"algo.critic_warmup_iterations needs a loss with a critic (one that reads old_values: "
         f"{[n for n in LOSSES.names() if 'old_values' in LOSSES.lookup(n).needs]}), not {cfg.algo.loss!r}"),
        (not cfg.data.weights or len(cfg.data.weights) == len(cfg.data.paths),
         f"data.weights needs one weight per data.paths entry, got {len(cfg.data.weights)} for {len(cfg.data.paths)}"),
        (not cfg.data.anchor_weights or len(cfg.data.anchor_weights) == len(cfg.data.anchor_paths),
         "data.anchor_weights needs one weight per data.anchor_paths entry"),
        (cfg.data.scene_frames >= 0, f"data.scene_frames must be >= 0 (0: none), got {cfg.data.scene_frames}"),
        (cfg.data.scene_batch >= 1, f"data.scene_batch must be >= 1, got {cfg.data.scene_batch}"),
        (cfg.data.scene_frames == 0 or algorithm_of(cfg.algo).trainer == "sft",
         f"data.scene_frames trains alongside demonstrations in algo=sft; algo={cfg.algo.name} does not read it: "
         "set data.scene_frames=0"),
        (not cfg.data.carried_scenes or cfg.data.scene_frames > cfg.experiment.eval_num_envs,
         "data.carried_scenes=true stages every other wave of experiment.eval_num_envs scenes as a carried one: set "
         f"data.scene_frames above {cfg.experiment.eval_num_envs} (got {cfg.data.scene_frames})"),
        (cfg.policy.critic in ("backbone", "privileged"),
         f"policy.critic must be backbone or privileged, got {cfg.policy.critic!r}"),
        (cfg.policy.critic == "backbone" or cfg.policy.name == "vla",
         f"policy.critic=privileged is an option of policy=vla; policy={cfg.policy.name} picks its critic's inputs "
         "with policy.obs_keys"),
        (cfg.experiment.time_limit_s is None or cfg.experiment.time_limit_s > 0,
         f"experiment.time_limit_s must be > 0 seconds (null: no limit), got {cfg.experiment.time_limit_s}"),
        (cfg.experiment.stop_at_success is None or (0 < cfg.experiment.stop_at_success <= 1
                                                     and cfg.experiment.eval_interval > 0),
         f"experiment.stop_at_success={cfg.experiment.stop_at_success} needs a value in (0, 1] and evaluations "
         f"during the run (experiment.eval_interval > 0, got {cfg.experiment.eval_interval})"),
        (cfg.experiment.eval_episodes >= 1, f"experiment.eval_episodes must be >= 1, got {cfg.experiment.eval_episodes}"),
        (cfg.experiment.eval_num_envs >= 1,
         f"experiment.eval_num_envs must be >= 1 (worlds evaluated side by side), got {cfg.experiment.eval_num_envs}"),
        (cfg.env.suite is None or (cfg.env.task == "TabletopSuite" and cfg.env.backend in ("mujoco", "mujoco_warp")),
         f"env.suite={cfg.env.suite} picks tasks of TabletopSuite on the mujoco backends, not env.task="
         f"{cfg.env.task} on backend {cfg.env.backend}: use env=tabletop_suite env.suite={cfg.env.suite}"),
        (cfg.env.render_quality is None or cfg.env.backend in ("mujoco", "mujoco_warp"),
         f"env.render_quality={cfg.env.render_quality} is a setting of the mujoco backends' renderer, not of backend "
         f"{cfg.env.backend}: drop it"),
        (cfg.env.render_quality in (None, *RENDER_QUALITIES),
         f"env.render_quality must be one of {sorted(RENDER_QUALITIES)} (or null), got {cfg.env.render_quality!r}"),
        (cfg.env.max_episode_steps is None or cfg.env.max_episode_steps >= 1,
         f"env.max_episode_steps must be >= 1 (or null: the task's own limit), got {cfg.env.max_episode_steps}"),
        (cfg.policy.chunk_size >= 1, f"policy.chunk_size must be >= 1 (actions per prediction), "
                                     f"got {cfg.policy.chunk_size}"),
        (cfg.policy.name not in ("residual", "residual_tanh") or cfg.base,
         f"policy={cfg.policy.name} needs base=<policy directory written by save_pretrained>"),
        (cfg.policy.residual_scale > 0, f"policy.residual_scale must be > 0, got {cfg.policy.residual_scale}"),
    ]
    if cfg.robot:
        checks += robot_rl_checks(cfg)
    checks.append((0 <= cfg.algo.ema_decay < 1,
                   f"algo.ema_decay must be in [0, 1) (e.g. 0.999; 0 turns it off), got {cfg.algo.ema_decay}"))
    checks += algorithm_of(cfg.algo).checks(cfg)  # the algorithm's own settings
    on_policy = algorithm_of(cfg.algo).trainer == "rl"  # the loop that reads algo.advantage and algo.loss
    combination = combination_problem(cfg.algo.collector, cfg.algo.advantage, cfg.algo.loss, cfg.algo.kl_coef,
                                      cfg.algo.target_kl) if on_policy else None
    if combination is not None:
        raise ValueError(combination)
    if get_loss(cfg.algo.loss).needs_teacher and not hasattr(cfg.algo, "teacher"):
        with_teacher = [n for n in ALGORITHMS.names() if hasattr(ALGORITHMS.lookup(n).config, "teacher")]
        raise ValueError(f"algo.loss={cfg.algo.loss} scores actions with a teacher policy (algo.teacher), a setting "
                         f"algo={cfg.algo.name} does not have: use algo in {with_teacher}")
    collector = COLLECTORS.lookup(cfg.algo.collector)
    checks += collector.checks(cfg)  # e.g. whole groups per env worker
    checks.append((cfg.dist.pipeline_stages == 1 or collector.pipelines,
                   f"dist.pipeline_stages=2 pipelines step collectors; the {cfg.algo.collector} collector runs "
                   "unpipelined: set dist.pipeline_stages=1"))
    checks += dist_checks(cfg)
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    learner_device(cfg.experiment.device)  # a malformed or absent device fails here, before anything is built

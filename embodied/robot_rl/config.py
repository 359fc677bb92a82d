"""Settings of RL on a robot (``embodied-train robot=<name>``): the loop's rate, the person's part, the record."""

from __future__ import annotations

from dataclasses import dataclass, field

from real_robot.safety import SafetyLimits
from sims.mujoco.domain import DOMAINS


@dataclass
class RobotRLConfig:
    """How ``embodied-train`` trains on the robot of ``robot=`` (the robot config group; the sim twin first)."""

    # the loop's rate, a real arm's command period; 0: as fast as commands return (the sim twin only, which advances
    # its own simulated 1 / robot.control_hz per command whatever the loop's rate). Episodes last env.max_episode_steps
    control_hz: float = 20.0
    # a person at a teleop device (keyboard | spacemouse | gamepad | scripted: the sim twin's expert standing in)
    # takes over from step person_after_step of each of the first person_episodes episodes; "": nobody
    person: str = ""
    person_after_step: int = 20
    person_episodes: int = 0
    # the reward and success source: twin (the simulator's task check: the sim twin only) | the folder of a success
    # classifier (SuccessClassifier.save_pretrained; it reads one of the robot's cameras), as on hardware
    success: str = "twin"
    # with a success classifier, a key on the terminal (stdin) overrides its verdict for one step: s solved, f not yet
    # (off when robot_rl.person=keyboard, whose s and f move the arm)
    success_keys: bool = True
    # TwinRL's failure mining: every twinrl_every episodes (and before the first), evaluate the learner's policy in
    # the twin (simulation in domain twin_domain) on twinrl_evaluated scenes, map where it fails, and make the next
    # twinrl_every resets the most failure-prone of twinrl_candidates fresh scenes (the twin sets them itself; on a
    # real arm the person is shown their object poses); 0: uniform resets. twin_domain: sim (the simulator as it is)
    # or a twin built to match the cell (shifted_twin)
    twinrl_every: int = 0
    twinrl_evaluated: int = 64
    twinrl_candidates: int = 256
    twin_domain: str = "sim"
    # every eval_every episodes, the learner's policy is evaluated in simulation (env.domain, experiment.eval_episodes
    # scenes of experiment.eval_seed, deterministic) and robot/eval_success logged: on the sim twin, env.domain is the
    # robot's, so this measures the success of uniform resets whatever the resets were; 0: only at the end
    eval_every: int = 0
    record: str = ""  # where every robot step is recorded (a LeRobot dataset); "": <output_dir>/robot_data
    safety: SafetyLimits = field(default_factory=SafetyLimits)  # the guard's limits, e.g. robot_rl.safety.watchdog_s=1


def robot_rl_checks(cfg) -> list[tuple[bool, str]]:
    """(ok, message) checks of a robot run's ``TrainConfig``: each message names the bad value and the fix."""
    r, robot = cfg.robot_rl, cfg.robot.get("type", "sim_twin")
    twin = robot == "sim_twin"
    return [
        (cfg.algo.name == "sac",
         f"a robot learns off-policy from its replay buffer and the person's interventions: algo must be sac, got "
         f"{cfg.algo.name!r} (add algo=sac policy=tanh_mlp; algo.demo_ratio is the interventions' share of a batch)"),
        (cfg.env.num_envs == 1, f"a robot is one env: set env.num_envs=1 (got {cfg.env.num_envs})"),
        (cfg.dist.backend == "single", f"a robot run steps its one robot in this process: dist must be single, got "
                                       f"{cfg.dist.backend!r}"),
        (not twin or cfg.robot.get("task") == cfg.env.task,
         f"the sim twin runs robot.task={cfg.robot.get('task')!r} but the env (the learner's specs and evaluation) is "
         f"{cfg.env.task!r}: set robot.task={cfg.env.task} or env=<the twin's task>"),
        (not twin or cfg.robot.get("domain", "sim") == cfg.env.domain,
         f"the sim twin runs robot.domain={cfg.robot.get('domain', 'sim')!r} but the run evaluates env.domain="
         f"{cfg.env.domain!r}: set env.domain={cfg.robot.get('domain', 'sim')}"),
        (not twin or not cfg.env.cameras
         or list(cfg.robot.get("image_size", [64, 64])) == list(cfg.env.image_size),
         f"the sim twin renders robot.image_size={list(cfg.robot.get('image_size', [64, 64]))} but the policy learns "
         f"from env.image_size={list(cfg.env.image_size)}: set robot.image_size="
         f"[{','.join(str(n) for n in cfg.env.image_size)}]"),
        (r.control_hz > 0 or r.control_hz == 0 and twin,
         f"robot_rl.control_hz must be > 0 (0, unpaced, is for the sim twin only), got {r.control_hz}"),
        (r.success != "twin" or twin,
         f"robot={robot} has no task check: set robot_rl.success=<a success classifier's folder>"),
        (r.person != "scripted" or twin,
         f"robot_rl.person=scripted is the sim twin's expert, which reads the simulator: on robot={robot} a person "
         "takes over at robot_rl.person=keyboard, spacemouse or gamepad"),
        ("privileged" not in cfg.policy.obs_keys or twin,
         f"policy.obs_keys={list(cfg.policy.obs_keys)} reads the simulator's task state, which robot={robot} does not "
         "have: train a policy from cameras and proprioception (experiment=robot_pixels)"),
        (twin or bool(cfg.init_from),
         f"robot={robot}: a real arm learns from a pre-trained policy, never from random actions: set init_from=<a "
         "policy trained in simulation for this arm, e.g. by SFT>"),
        (not cfg.data.paths,
         f"a robot run's offline demonstrations are the expert's in simulation (algo.demo_episodes=20), scored by the "
         f"success reward as the robot is; data.paths={list(cfg.data.paths)} carries its recording's reward: set "
         f"data.paths=[]"),
        (not getattr(cfg.algo, "pretrain_steps", 0),
         "a robot run does not pre-train: pre-train in simulation and start from it (init_from=<policy folder>), or "
         "set algo.pretrain_steps=0"),
        (r.twinrl_every >= 0 and r.twinrl_evaluated >= 5 and r.twinrl_candidates >= r.twinrl_every,
         f"robot_rl.twinrl_every must be >= 0, twinrl_evaluated >= 5 (the failure map's neighbours) and "
         f"twinrl_candidates >= twinrl_every, got {r.twinrl_every}, {r.twinrl_evaluated} and {r.twinrl_candidates}"),
        (r.twin_domain in DOMAINS, f"robot_rl.twin_domain={r.twin_domain!r} is not a domain; set one of "
                                   f"{sorted(DOMAINS)}, e.g. robot_rl.twin_domain=sim"),
        (r.twin_domain == "sim" or r.twinrl_every > 0,
         f"robot_rl.twin_domain={r.twin_domain} is where TwinRL's failure mining evaluates, which "
         "robot_rl.twinrl_every=0 turns off: set robot_rl.twinrl_every=10 or leave twin_domain at sim"),
        (r.eval_every >= 0, f"robot_rl.eval_every must be >= 0 (0: evaluate at the end only), got {r.eval_every}"),
        (r.person_after_step >= 0 and r.person_episodes >= 0,
         f"robot_rl.person_after_step and robot_rl.person_episodes must be >= 0, got {r.person_after_step} and "
         f"{r.person_episodes}"),
        (not r.person_episodes or bool(r.person),
         "robot_rl.person_episodes > 0 needs a device: robot_rl.person=scripted (the twin's expert), keyboard, "
         "spacemouse or gamepad"),
    ]

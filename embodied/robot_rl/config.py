"""Settings of RL on a robot (``embodied-train robot=<name>``): the loop's rate, the person's part, the record."""

from __future__ import annotations

from dataclasses import dataclass, field

from real_robot.safety import SafetyLimits


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
    record: str = ""  # where every robot step is recorded (a LeRobot dataset); "": <output_dir>/robot_data
    safety: SafetyLimits = field(default_factory=SafetyLimits)  # the guard's limits, e.g. robot_rl.safety.watchdog_s=1


def robot_rl_checks(cfg) -> list[tuple[bool, str]]:
    """(ok, message) checks of a robot run's ``TrainConfig``: each message names the bad value and the fix."""
    r = cfg.robot_rl
    return [
        (cfg.algo.name == "sac",
         f"a robot learns off-policy from its replay buffer and the person's interventions: algo must be sac, got "
         f"{cfg.algo.name!r} (add algo=sac policy=tanh_mlp; algo.demo_ratio is the interventions' share of a batch)"),
        (cfg.env.num_envs == 1, f"a robot is one env: set env.num_envs=1 (got {cfg.env.num_envs})"),
        (cfg.dist.backend == "single", f"a robot run steps its one robot in this process: dist must be single, got "
                                       f"{cfg.dist.backend!r}"),
        (cfg.robot.get("type", "sim_twin") != "sim_twin" or cfg.robot.get("task") == cfg.env.task,
         f"the sim twin runs robot.task={cfg.robot.get('task')!r} but the env (the learner's specs and evaluation) is "
         f"{cfg.env.task!r}: set robot.task={cfg.env.task} or env=<the twin's task>"),
        (cfg.robot.get("type", "sim_twin") != "sim_twin" or cfg.robot.get("domain", "sim") == cfg.env.domain,
         f"the sim twin runs robot.domain={cfg.robot.get('domain', 'sim')!r} but the run evaluates env.domain="
         f"{cfg.env.domain!r}: set env.domain={cfg.robot.get('domain', 'sim')}"),
        (r.control_hz > 0 or r.control_hz == 0 and cfg.robot.get("type", "sim_twin") == "sim_twin",
         f"robot_rl.control_hz must be > 0 (0, unpaced, is for the sim twin only), got {r.control_hz}"),
        (r.person_after_step >= 0 and r.person_episodes >= 0,
         f"robot_rl.person_after_step and robot_rl.person_episodes must be >= 0, got {r.person_after_step} and "
         f"{r.person_episodes}"),
        (not r.person_episodes or bool(r.person),
         "robot_rl.person_episodes > 0 needs a device: robot_rl.person=scripted (the twin's expert), keyboard, "
         "spacemouse or gamepad"),
        (not cfg.data.paths and not getattr(cfg.algo, "demo_episodes", 0),
         "a robot run's demonstrations are the person's interventions: drop data.paths and algo.demo_episodes"),
    ]

"""``embodied-deploy``: run a trained policy on a robot through the safety guard (the sim twin by default).

Examples:
  embodied-deploy                                             # sim twin dry run of runs/Reach_ppo/final_policy
  embodied-deploy policy_path=runs/PushCube_ppo/final_policy robot.task=PushCube episodes=5
  embodied-deploy control_hz=30 temporal_ensemble=0.01 record=datasets/real_rollouts
  embodied-deploy robot=franka robot.host=172.16.0.2 controller=ee_delta_pos safety.max_relative_target=0.05
Ctrl-C, and space, q or Esc in the terminal (estop_keys=...), are e-stops: the arm holds, the robot
disconnects, recorded frames are saved, and the process exits 1 with the reason. The gripper force is capped
at safety.max_gripper_force newtons. Prints loop timing (p50/p99 period, jitter) and every safety intervention.
"""

from __future__ import annotations

import os
import sys

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from embodied.cli.console import print_help, quiet_third_party_logs
from embodied.cli.train import _config_path
from embodied.config.strict import to_typed
from embodied.deploy.config import DeployConfig

ConfigStore.instance().store(name="deploy_schema", node=DeployConfig)


def _run(cfg: DictConfig) -> None:
    from embodied.deploy.session import run_deployment

    typed: DeployConfig = to_typed(cfg, DeployConfig, "embodied-deploy")
    try:
        reports = run_deployment(typed)
    except (FileNotFoundError, ValueError, KeyError, ImportError, ConnectionError) as error:
        sys.exit(f"embodied-deploy: {error}")
    failed = False
    for i, report in enumerate(reports):
        t = report.timing()
        print(f"episode {i}: {report.outcome} after {report.steps} steps; period p50 {t['period_p50_ms']:.1f} ms, "
              f"p99 {t['period_p99_ms']:.1f} ms, jitter {t['jitter_ms']:.1f} ms; frames recorded "
              f"{report.frames_recorded}; interventions {report.interventions}")
        failed |= report.outcome.startswith(("safety_stop", "nan_action"))
    if failed:
        sys.exit(f"embodied-deploy: stopped safely ({reports[-1].outcome}); the robot was held and disconnected")


def main() -> None:
    """Console entry point."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    quiet_third_party_logs()
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        print_help(__doc__, _config_path(), "deploy", [a for a in sys.argv[1:] if a not in ("-h", "--help")])
        return
    hydra.main(version_base=None, config_path=_config_path(), config_name="deploy")(_run)()


if __name__ == "__main__":
    main()

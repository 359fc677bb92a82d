"""``embodied-teleop``: record demonstrations by teleoperation into a LeRobot v3.0 dataset.

Examples:
  embodied-teleop                                              # sim twin PickCube, 2 cameras; keyboard on a terminal
  embodied-teleop device=spacemouse dataset=datasets/pick episodes=50 instructions='["pick up the red cube"]'
  embodied-teleop robot=franka robot.host=172.16.0.2 device=gamepad prompt=true
  embodied-teleop device=scripted episodes=100 dataset=datasets/pick_expert     # unattended sim demos
  embodied-teleop --resume dataset=datasets/pick_expert episodes=10             # append (fps/features checked)
Each episode: reset (the sim twin resets itself; a person resets a real scene within reset_time_s), then record
at fps until episode_time_s or the device's finish key; re-record discards the episode, stop ends the session.
Every command goes through the safety guard; the action recorded is the one actually sent. Ctrl-C is an
e-stop; saved episodes are never lost (a kill -9 loses only the episode being recorded). Keyboard keys:
w/s a/d r/f move, space gripper, Enter/n finish, Backspace/b re-record, Esc/q stop.
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
from embodied.teleop.config import TeleopConfig

ConfigStore.instance().store(name="teleop_schema", node=TeleopConfig)


def _run(cfg: DictConfig) -> None:
    from embodied.deploy.rate import period_stats
    from embodied.teleop.session import TeleopSession

    typed: TeleopConfig = to_typed(cfg, TeleopConfig, "embodied-teleop")
    try:
        summaries = TeleopSession(typed).run()
    except (FileNotFoundError, FileExistsError, ValueError, KeyError, ImportError, ConnectionError,
            RuntimeError) as error:
        sys.exit(f"embodied-teleop: {error}")
    saved = [s for s in summaries if s.index is not None]
    timing = period_stats([p for s in saved for p in s.periods_ms])
    print(f"saved {len(saved)} episodes ({sum(s.frames for s in saved)} frames) to {typed.dataset}; loop period "
          f"p50 {timing['period_p50_ms']:.1f} ms, p99 {timing['period_p99_ms']:.1f} ms at {typed.fps:g} fps")
    if summaries and summaries[-1].outcome.startswith("safety_stop"):
        sys.exit(f"embodied-teleop: stopped safely ({summaries[-1].outcome}); the robot was held and disconnected; "
                 "every episode up to this one is saved")


def main() -> None:
    """Console entry point (``--resume`` is accepted for ``resume=true``)."""
    sys.argv = [("resume=true" if arg == "--resume" else arg) for arg in sys.argv]
    os.environ.setdefault("MUJOCO_GL", "egl")
    quiet_third_party_logs()
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        print_help(__doc__, _config_path(), "teleop", [a for a in sys.argv[1:] if a not in ("-h", "--help")])
        return
    hydra.main(version_base=None, config_path=_config_path(), config_name="teleop")(_run)()


if __name__ == "__main__":
    main()

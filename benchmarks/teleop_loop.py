"""Teleoperation loop timing: the scripted device drives the sim twin (PickCube, 2 cameras) through the safety
guard at 30 Hz while every frame is recorded; reports the loop period p50/p99, overruns, and the time spent
encoding and committing each episode (done between episodes, never inside the loop).

Run: python benchmarks/teleop_loop.py [--episodes 10] [--fps 30] [--size 64]
Writes benchmarks/results/teleop_loop.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported

import numpy as np
import torch
from results_io import write_results

from embodied.deploy.rate import period_stats
from embodied.teleop.config import TeleopConfig
from embodied.teleop.session import TeleopSession


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as root:
        cfg = TeleopConfig(dataset=os.path.join(root, "teleop"), episodes=args.episodes, fps=args.fps, view="none",
                           robot={"type": "sim_twin", "task": "PickCube", "cameras": ["front", "wrist"],
                                  "image_size": [args.size, args.size]}, device={"type": "scripted"})
        summaries = TeleopSession(cfg, stream=open(os.devnull, "w")).run()
    periods = [p for s in summaries for p in s.periods_ms]
    timing = period_stats(periods)
    budget = 1e3 / args.fps
    result = {"fps": args.fps, "cameras": 2, "image_size": args.size, "episodes": len(summaries),
              "frames": sum(s.frames for s in summaries), "outcomes": [s.outcome for s in summaries],
              **timing, "period_max_ms": float(np.max(periods)),
              "overruns_over_10pct": int(np.sum(np.array(periods) > 1.1 * budget)),
              "save_seconds_mean": float(np.mean([s.save_seconds for s in summaries]))}
    print("| fps | cameras | frames | period p50 (ms) | p99 (ms) | max (ms) | >10% over | save/episode (s) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.fps:g} | 2 x {args.size}x{args.size} | {result['frames']} | {timing['period_p50_ms']:.1f} | "
          f"{timing['period_p99_ms']:.1f} | {result['period_max_ms']:.1f} | {result['overruns_over_10pct']} | "
          f"{result['save_seconds_mean']:.3f} |")
    write_results(os.path.join(os.path.dirname(__file__), "results", "teleop_loop.json"), result)


if __name__ == "__main__":
    main()

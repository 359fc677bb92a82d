"""Deployment loop timing on the sim twin with a VLA policy: period p50/p99 and jitter at 30 Hz and 100 Hz.

Run: python benchmarks/deploy_loop.py [--steps 200] [--encoders pretrained|tiny]
The VLA (Gaussian chunk head, chunk 8, front camera 64x64) is saved and loaded with from_pretrained like a
trained one; its weights do not matter for timing. Inference happens once per chunk (action queue), or every
step with temporal ensembling. Writes benchmarks/results/deploy_loop.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported

import torch  # noqa: E402
from results_io import write_results

from embodied.deploy.config import DeployConfig
from embodied.deploy.session import run_deployment
from policies import make_policy
from sims import make_env


def save_vla(directory: str, encoders: str) -> None:
    env = make_env(task="PickCube", num_envs=1, cameras=("front",), controller="ee_delta_pos")
    obs, _ = env.reset(seed=0)
    towers = ({"name": "mobilenet_v2_imagenet", "freeze": True}, {"name": "minilm", "freeze": True}) \
        if encoders == "pretrained" else ({"name": "tiny"}, {"name": "tiny"})
    policy = make_policy("vla", state_dim=env.observation_spec.state_dim, action_dim=env.action_spec.dim,
                         chunk_size=8, cameras=["front"], vision=towers[0], language=towers[1],
                         head={"name": "gaussian"})
    states = obs["state"]
    policy.set_stats(states.mean(0), torch.ones(states.shape[1]), -torch.ones(4), torch.ones(4))
    policy.save_pretrained(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--encoders", choices=["pretrained", "tiny"], default="pretrained")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on 2 cores)")
    parser.add_argument("--out", default="benchmarks/results/deploy_loop.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        save_vla(directory, args.encoders)
        for hz in (30.0, 100.0):
            for ensemble in (None, 0.01):
                cfg = DeployConfig(policy_path=directory, robot={"type": "sim_twin", "task": "PickCube",
                                                                 "cameras": ["front"], "image_size": [64, 64]},
                                   control_hz=hz, max_steps=args.steps, stop_on_success=False,
                                   temporal_ensemble=ensemble, safety={"watchdog_s": 1.0})
                report = run_deployment(cfg)[0]
                rows.append({"hz": hz, "temporal_ensemble": ensemble, "outcome": report.outcome, **report.timing()})
    print(f"\nDeploy loop on the sim twin, VLA ({args.encoders} encoders, Gaussian chunk head, chunk 8), "
          f"{args.steps} steps, torch threads {args.threads}")
    print(f"{'Hz':>5} | {'inference':>18} | {'target ms':>9} | {'p50 ms':>7} | {'p99 ms':>7} | {'jitter ms':>9}")
    for r in rows:
        mode = "every step (ACT)" if r["temporal_ensemble"] is not None else "once per chunk"
        print(f"{r['hz']:>5.0f} | {mode:>18} | {1000 / r['hz']:>9.1f} | {r['period_p50_ms']:>7.2f} | "
              f"{r['period_p99_ms']:>7.2f} | {r['jitter_ms']:>9.2f}")
    write_results(args.out, {"encoders": args.encoders, "steps": args.steps, "rows": rows})


if __name__ == "__main__":
    main()

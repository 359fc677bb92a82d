"""VLA latency: per action head, pretrained encoders (ImageNet MobileNetV2 + MiniLM), 64x64 and 128x128 images.

Run: python benchmarks/vla_latency.py [--threads 1 2] [--chunk 8] [--repeats 30]
Reports batch-1 inference latency (ms per action chunk, median and p90, steady state: the frozen MiniLM's
features of the unchanged instruction are memoised, as in deployment; the first call including MiniLM is
reported too) and the time of one batch-64 training step (PPO-style evaluate + backward + Adam step, frozen
encoders, features cached), for each torch thread count (default: 1 and all cores; on a 2-core machine one
thread is faster, see MACHINE-NOTES). Writes benchmarks/results/vla_latency.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported

import torch  # noqa: E402
from results_io import write_results

from policies import make_policy

HEADS = ("gaussian", "token", "flow")
GOAL_MS = 15.0


def build(head: str, chunk: int):
    """A VLA with the pretrained towers frozen (their features cached) and a small Llama-style decoder."""
    policy = make_policy("vla", state_dim=9, action_dim=4, chunk_size=chunk, cameras=["front"], head={"name": head},
                         vision={"name": "mobilenet_v2_imagenet", "freeze": True},
                         language={"name": "minilm", "freeze": True, "max_tokens": 16})
    policy.set_stats(torch.zeros(9), torch.ones(9), -torch.ones(4), torch.ones(4))
    return policy.eval()


def observation(batch: int, size: int) -> dict:
    return {"rgb": {"front": torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)},
            "state": torch.randn(batch, 9), "instruction": ["pick up the red cube and lift it"] * batch}


def time_ms(fn, repeats: int) -> list[float]:
    """Wall-clock milliseconds of ``repeats`` calls after two warm-up calls."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def measure(head: str, size: int, chunk: int, repeats: int) -> dict:
    policy = build(head, chunk)
    obs1 = observation(1, size)
    with torch.inference_mode():
        start = time.perf_counter()
        policy.deterministic_action(obs1)  # first call: MiniLM encodes the instruction
        first_ms = (time.perf_counter() - start) * 1e3
        latency = time_ms(lambda: policy.deterministic_action(obs1), repeats)
    obs64 = policy.cache_features(observation(64, size))
    action = policy.act(obs64)[0].detach()
    policy.train()
    optimizer = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=1e-4)

    def train_step():
        logprob, entropy, value = policy.evaluate(obs64, action)
        loss = -logprob.mean() - 0.01 * entropy.mean() + value.pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    train = time_ms(train_step, max(5, repeats // 3))
    return {"head": head, "image": size, "first_call_ms": first_ms,
            "latency_ms_p50": statistics.median(latency), "latency_ms_p90": sorted(latency)[int(0.9 * len(latency))],
            "train_step_b64_ms": statistics.median(train)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}),
                        help="torch thread counts to measure (default: 1 and all cores)")
    parser.add_argument("--chunk", type=int, default=8, help="action chunk length T")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default="benchmarks/results/vla_latency.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        rows += [measure(head, size, args.chunk, args.repeats) | {"threads": threads}
                 for head in HEADS for size in (64, 128)]
    print(f"\nVLA latency, chunk {args.chunk}, MobileNetV2 + MiniLM (frozen, cached), batch 1 inference / batch 64 "
          "train step")
    print(f"{'threads':>7} | {'head':>9} | {'image':>5} | {'ms/chunk p50':>12} | {'p90':>6} | {'first call':>10} | "
          f"{'train step b64':>14}")
    for r in rows:
        print(f"{r['threads']:>7} | {r['head']:>9} | {r['image']:>5} | {r['latency_ms_p50']:>12.1f} | "
              f"{r['latency_ms_p90']:>6.1f} | {r['first_call_ms']:>8.1f}ms | {r['train_step_b64_ms']:>12.1f}ms")
    best = min((r for r in rows if r["head"] == "gaussian" and r["image"] == 64), key=lambda r: r["latency_ms_p50"])
    verdict = "meets" if best["latency_ms_p50"] <= GOAL_MS else "misses"
    print(f"continuous chunk head at 64x64: {best['latency_ms_p50']:.1f} ms per chunk with {best['threads']} torch "
          f"thread(s) ({verdict} the {GOAL_MS:.0f} ms goal)")
    write_results(args.out, {"chunk": args.chunk, "rows": rows})


if __name__ == "__main__":
    main()

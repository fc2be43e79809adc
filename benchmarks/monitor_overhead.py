"""The monitor's cost per training step (DESIGN §9: at most 2% at every=50).

Trains the same models with and without `Monitor(..., every=50)` in alternating rounds and prints the
median step time of each and their difference, and the share of the monitored run's step time spent in
the monitor (measured inside the run: on a shared, loaded machine the difference of two runs is mostly
noise, the in-run share is not). Models: a 10M-parameter MLP and a small CNN on image tensors.

Usage: python benchmarks/monitor_overhead.py [--rounds 3] [--steps 100] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

from mltriage.monitor import Monitor


def mlp_10m() -> tuple[nn.Module, callable]:
    model = nn.Sequential(nn.Linear(1024, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(),
                          nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 10))
    return model, lambda device: (torch.randn(64, 1024, device=device), torch.randint(0, 10, (64,), device=device))


def small_cnn() -> tuple[nn.Module, callable]:
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10))
    return model, lambda device: (torch.randn(64, 3, 32, 32, device=device),
                                  torch.randint(0, 10, (64,), device=device))


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run(make, steps: int, device: str, monitored: bool, folder: Path) -> tuple[float, float | None]:
    """Seconds per step over `steps` steps (after 5 warm-up steps), and with the monitor the share of the
    step time spent in it: mon.step, plus the extra time of the optimizer step it hooks and of the forward
    pass its activation hooks watch on the steps around a record, over the median of the other steps.
    That share is measured inside one run, so it holds on a loaded machine where comparing two runs'
    step times does not."""
    torch.manual_seed(0)
    model, batch = make()
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    mon = Monitor(model, opt, every=50, path=folder / f"run-{time.monotonic_ns()}.jsonl") if monitored else None
    data = [batch(device) for _ in range(8)]
    parts = {"forward": [], "step": [], "monitor": [], "total": []}
    for i in range(steps + 5):
        x, y = data[i % len(data)]
        _sync(device)
        t0 = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x), y)
        _sync(device)
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        _sync(device)
        t2 = time.perf_counter()
        if mon is not None:
            mon.step(loss)
        _sync(device)
        t3 = time.perf_counter()
        opt.step()
        _sync(device)
        t4 = time.perf_counter()
        if i >= 5:
            for key, value in (("forward", t1 - t0), ("monitor", t3 - t2), ("step", t4 - t3), ("total", t4 - t0)):
                parts[key].append(value)
    if mon is not None:
        mon.close()
    per_step = statistics.mean(parts["total"])
    if mon is None:
        return per_step, None
    recorded = {k for k in range(steps) if (k + 6) % 50 == 0}       # monitor steps count from 1, warm-up 5
    extra = sum(parts["monitor"])
    # the recorded step's forward pass runs the activation hooks, its optimizer step the update-ratio hook
    for key, around in (("step", recorded), ("forward", recorded)):
        typical = statistics.median(v for k, v in enumerate(parts[key]) if k not in around)
        extra += sum(max(0.0, parts[key][k] - typical) for k in around if k < len(parts[key]))
    return per_step, extra / sum(parts["total"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"device {args.device}, {torch.get_num_threads()} torch threads, {args.rounds} alternating rounds "
          f"of {args.steps} steps, Monitor(every=50)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in (("mlp 10M params", mlp_10m), ("cnn 32x32", small_cnn)):
            n = sum(p.numel() for p in make()[0].parameters())
            plain, monitored, shares = [], [], []
            for r in range(args.rounds):
                # the order alternates: with plain always first, it came out 20-30% slower in every round
                for with_monitor in ((False, True) if r % 2 == 0 else (True, False)):
                    seconds, share = run(make, args.steps, args.device, with_monitor, Path(tmp))
                    (monitored if with_monitor else plain).append(seconds)
                    if with_monitor:
                        shares.append(share)
            a, b = statistics.median(plain), statistics.median(monitored)
            print(f"{name:16s} ({n / 1e6:.1f}M): {a * 1e3:8.2f} ms/step plain, {b * 1e3:8.2f} ms/step monitored, "
                  f"difference {100 * (b - a) / a:+.2f}%; time inside the monitor "
                  f"{100 * statistics.median(shares):.3f}% of the step time (target <= 2%)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

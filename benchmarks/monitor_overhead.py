"""The monitor's cost per training step (DESIGN §9: at most 2% at every=50).

Trains the same models with and without `Monitor(..., every=50)` in alternating rounds and prints the
median step time of each and the overhead. Models: a 10M-parameter MLP and a small CNN on image tensors.

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


def run(make, steps: int, device: str, monitored: bool, folder: Path) -> float:
    """Seconds per step over `steps` steps (after 5 warm-up steps)."""
    torch.manual_seed(0)
    model, batch = make()
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    mon = Monitor(model, opt, every=50, path=folder / f"run-{time.monotonic_ns()}.jsonl") if monitored else None
    data = [batch(device) for _ in range(8)]
    start = None
    for i in range(steps + 5):
        if i == 5:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        x, y = data[i % len(data)]
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        if mon is not None:
            mon.step(loss)
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    if mon is not None:
        mon.close()
    return seconds


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
            plain, monitored = [], []
            for _ in range(args.rounds):
                plain.append(run(make, args.steps, args.device, False, Path(tmp)))
                monitored.append(run(make, args.steps, args.device, True, Path(tmp)))
            a, b = statistics.median(plain), statistics.median(monitored)
            print(f"{name:16s} ({n / 1e6:.1f}M): {a * 1e3:8.2f} ms/step plain, {b * 1e3:8.2f} ms/step monitored, "
                  f"overhead {100 * (b - a) / a:+.2f}% (target <= 2%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

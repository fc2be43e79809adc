"""Tensor projects at scale (issue 14): the images sample at 20,000 images and the tokens sample at 50,000
sequences, every step, in a fresh process each: wall seconds, CPU seconds and peak RSS per step, and
whether the data step streams the Dataset (its peak memory at a quarter of the size vs the full size).

    python benchmarks/tensor_project.py                 # both samples, full size
    python benchmarks/tensor_project.py images --scale 0.25

Targets on 2 CPU cores: all steps under 120 s at the default budget; data steps under 30 s at 20,000
images; the data step's peak RSS grows with the number of items by no more than its hash table and
statistics (a few MB), not by the images themselves.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_projects"
STEPS = ("problem", "sanity", "data", "architecture", "training", "metrics", "errors")
IMAGES_TARGET = 20_000
TOKENS_TARGET = 50_000


def _load_generate(name: str):
    spec = importlib.util.spec_from_file_location(f"generate_{name}", SAMPLES / name / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _copy_code(name: str, out: Path) -> Path:
    project = out / "fixed"
    for item in (SAMPLES / name / "fixed").iterdir():
        if item.name not in ("data", ".mltriage"):
            (shutil.copytree if item.is_dir() else shutil.copy)(item, project / item.name)
    return project


def build_images(out: Path, n: int) -> Path:
    """The images sample with about n images: the 1,797 digits repeated, each copy drawn afresh (its own
    colours, shift and noise), split 60/20/20 as the sample does."""
    gen = _load_generate("images")
    digits = gen.load_digits()
    repeat = max(1, round(n / len(digits.target)))

    class Bunch:
        images = np.concatenate([digits.images] * repeat)
        target = np.concatenate([digits.target] * repeat)

    gen.load_digits = lambda: Bunch
    gen.main(out)
    return _copy_code("images", out)


def build_tokens(out: Path, n: int) -> Path:
    gen = _load_generate("tokens")
    gen.N_REVIEWS = n
    gen.main(out)
    return _copy_code("tokens", out)


def run_step(project: Path, step: str) -> dict:
    """One `mltriage check --steps STEP` in its own process: wall, CPU (it and its workers) and peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mltriage.tui.cli", "check", str(project), "--steps", step,
                             "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    summary = json.loads(out)["summary"] if out.strip() else {}
    return {"step": step, "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "exit": proc.returncode, "summary": summary}


def bench(name: str, scale: float) -> None:
    build = build_images if name == "images" else build_tokens
    full = int((IMAGES_TARGET if name == "images" else TOKENS_TARGET) * scale)
    with tempfile.TemporaryDirectory() as tmp:
        project = build(Path(tmp) / "full", full)
        items = sum(1 for _ in (project / "data").rglob("*.png")) if name == "images" else \
            sum(len((project / "data" / f"{s}.jsonl").read_text().splitlines()) for s in ("train", "valid", "test"))
        print(f"\n{name}: {items:,} items ({project})")
        total = 0.0
        for step in STEPS:
            r = run_step(project, step)
            total += r["wall_s"]
            print(f"  {step:<13} wall {r['wall_s']:>6.1f} s  cpu {r['cpu_s']:>6.1f} s  peak RSS {r['peak_rss_mb']:>5} MB"
                  f"  {r['summary']}")
        print(f"  all steps     wall {total:.1f} s (target < 120 s)")
        small = build(Path(tmp) / "quarter", max(500, full // 4))
        a, b = run_step(small, "data"), run_step(project, "data")
        print(f"  data step peak RSS at 1/4 size {a['peak_rss_mb']} MB, full size {b['peak_rss_mb']} MB "
              f"(streams when the difference is a few MB, not the size of the images)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", nargs="*", help="images and/or tokens (default: both)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (default 1)")
    args = parser.parse_args()
    unknown = [s for s in args.samples if s not in ("images", "tokens")]
    if unknown:
        parser.error(f"unknown sample(s) {unknown}: use images and/or tokens")
    for name in args.samples or ["images", "tokens"]:
        bench(name, args.scale)


if __name__ == "__main__":
    main()

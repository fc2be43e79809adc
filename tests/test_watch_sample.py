"""The tokens sample's real training script with the monitor in it (pretrain.py, issue 16): `mltriage watch
--until-alarm` follows it while it trains and stops at the planted divergence (a learning-rate warm-up that
never ends), and says nothing about the fixed twin; the app's live Training view, fed by the same script
running in a thread, raises the alarm too. Short runs (every=5, a few hundred steps of a small CBOW model);
nothing here asserts on time: waits are bounded by generous deadlines only."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "sample_projects" / "tokens"
DEADLINE = 300
EVERY = 5
# The buggy run's smoothed loss passes 1.5x its lowest near step 400 (the lr is then 20x its peak);
# the fixed run is followed to its end.
BUGGY_STEPS, FIXED_STEPS = 700, 200


def _copy(variant: str, root: Path) -> Path:
    """The sample variant without state: the monitor file lands in the copy's .mltriage/monitor/."""
    target = root / variant
    shutil.copytree(SAMPLE / variant, target, ignore=shutil.ignore_patterns(".mltriage", "__pycache__"))
    return target


def _watch_while_training(folder: Path, steps: int) -> tuple[int, list[dict], str]:
    """Start pretrain.py, follow it with `mltriage watch --until-alarm --format jsonl`, stop the run after."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}      # two processes share the machine's cores
    train = subprocess.Popen([sys.executable, "pretrain.py", "--steps", str(steps), "--every", str(EVERY)],
                             cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        watch = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "watch", str(folder), "--until-alarm",
                                "--format", "jsonl"], capture_output=True, text=True, timeout=DEADLINE, env=env)
    finally:
        train.kill() if train.poll() is None else None
        _, err = train.communicate(timeout=DEADLINE)
    events = [json.loads(line) for line in watch.stdout.splitlines() if line.strip()]
    return watch.returncode, events, err + watch.stderr


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens-watch")
    runs = {"buggy": (_copy("buggy", root), BUGGY_STEPS), "fixed": (_copy("fixed", root), FIXED_STEPS)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = {v: pool.submit(_watch_while_training, *args) for v, args in runs.items()}
        return {v: future.result() for v, future in done.items()}


def test_watch_stops_the_buggy_run_at_its_divergence(watched):
    code, events, err = watched["buggy"]
    assert code == 1, (events, err[-2000:])
    alarms = [e["alarm"] for e in events if e["event"] == "alarm"]
    assert alarms and alarms[-1]["kind"] == "divergence" and alarms[-1]["status"] == "fail", alarms
    step = alarms[-1]["step"]
    assert step % EVERY == 0 and 50 < step < BUGGY_STEPS       # while it trained, not at the end
    assert "diverging" in alarms[-1]["title"] and f"step {step}" in alarms[-1]["title"]


def test_watch_follows_the_fixed_run_to_its_end_without_an_alarm(watched):
    code, events, err = watched["fixed"]
    assert code == 0, (events, err[-2000:])
    assert [e for e in events if e["event"] == "alarm"] == []
    assert events[-1]["event"] == "end" and "monitor closed" in events[-1]["text"]
    assert any("pretrain-" in json.dumps(e) for e in events)          # it followed the script's monitor file


# --- the app's live view, fed by the real script in a thread ------------------------------------------
def _load_pretrain(folder: Path):
    """The copy's pretrain.py as a module (it imports its neighbour train.py as `train`)."""
    saved = sys.modules.pop("train", None)
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(f"pretrain_{folder.name}_live", folder / "pretrain.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("train", None)
        if saved is not None:
            sys.modules["train"] = saved
    return module


def test_live_training_view_raises_the_divergence_of_the_real_run(tmp_path, monkeypatch):
    import torch

    from mltriage.checks.engine.registry import STEPS
    from mltriage.tui.app import MltriageApp
    from mltriage.tui.widgets.live_training import LiveTraining

    monkeypatch.setenv("MLTRIAGE_HOME", str(tmp_path / "home"))
    folder = _copy("buggy", tmp_path)
    pretrain = _load_pretrain(folder)
    (folder / ".mltriage" / "monitor").mkdir(parents=True)   # the live view follows the project's folder
    threads = torch.get_num_threads()

    def train():
        torch.set_num_threads(1)
        pretrain.main(steps=450, every=EVERY)

    writer = threading.Thread(target=train, daemon=True)

    async def drive():
        app = MltriageApp(folder, cursor_blink=False, check_titles=False)
        async with app.run_test(size=(110, 40)) as pilot:
            screen = app.screen
            writer.start()
            await _until(pilot, lambda: any((folder / ".mltriage" / "monitor").glob("*.jsonl")))
            screen.action_goto(STEPS.index("training") + 1)
            await _until(pilot, lambda: bool(screen.query(LiveTraining)))
            view = screen.query_one(LiveTraining)
            await _until(pilot, lambda: any(a.kind == "divergence" for a in view.alarms))
            await _until(pilot, lambda: "training.divergence" in screen.findings)
            assert screen.findings["training.divergence"].status == "fail"
            assert any(n.title == "Training alarm" and "diverging" in n.message for n in app._notifications)
            assert "1 fail" in str(screen.query_one("#steps").get_option("training").prompt)

    try:
        asyncio.run(drive())
    finally:
        writer.join(DEADLINE)
        torch.set_num_threads(threads)


async def _until(pilot, condition) -> None:
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > DEADLINE:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)

"""The Training step's live view (tui/widgets/live_training.py): a writer thread appends a run to the
monitor file while the app is open; the curves redraw, the divergence alarm changes the step status and
raises a notification, and keys keep working meanwhile. Nothing here times anything: waits are bounded
by generous deadlines only."""

from __future__ import annotations

import json
import math
import threading
import time

from app_fixtures import pilot_test, write_tiny_project
from mltriage.checks.engine.registry import STEPS
from mltriage.tui.app import MainScreen, MltriageApp
from mltriage.tui.widgets.live_training import (
    LiveTraining,
    alarm_finding,
    log_specs,
    store_alarm,
)

SIZE = (110, 40)
DEADLINE = 120.0




async def wait_for(pilot, condition, timeout: float = DEADLINE) -> None:
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)


def _record(step, loss, grad=1.0):
    return {"step": step, "time": 0.0, "loss": loss, "lr": 0.01,
            "layers": {"body.0": {"grad_norm": grad}, "head": {"grad_norm": grad / 2}}}


class Writer(threading.Thread):
    """Appends a falling loss, then (when told) a loss that climbs: a diverging run."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.diverge = threading.Event()
        self.done = threading.Event()

    def run(self):
        with open(self.path, "a", buffering=1) as f:
            for i in range(1, 41):
                f.write(json.dumps(_record(10 * i, 2.0 * math.exp(-i / 10) + 0.3)) + "\n")
            f.write(json.dumps({"step": 400, "time": 0.0, "eval": {"val_loss": 0.6}}) + "\n")
            self.diverge.wait(DEADLINE)
            for i in range(41, 80):
                f.write(json.dumps(_record(10 * i, 0.4 * 1.15 ** (i - 40))) + "\n")
                time.sleep(0.005)
        self.done.set()


def _project(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRIAGE_HOME", str(tmp_path / "home"))
    root = write_tiny_project(tmp_path / "tiny")
    folder = root / ".mltriage" / "monitor"
    folder.mkdir(parents=True)
    path = folder / "run-1.jsonl"
    path.write_text(json.dumps({"monitor": 1, "model": "Net", "layers": ["body.0", "head"], "every": 10,
                                "matrix": ["body.0", "head"]}) + "\n")
    return root, path


@pilot_test
async def test_live_view_follows_a_diverging_run(tmp_path, monkeypatch):
    root, path = _project(tmp_path, monkeypatch)
    writer = Writer(path)
    app = MltriageApp(root, cursor_blink=False, check_titles=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        assert not screen.query(LiveTraining)                # not in the other steps
        screen.action_goto(STEPS.index("training") + 1)
        await wait_for(pilot, lambda: bool(screen.query(LiveTraining)))
        view = screen.query_one(LiveTraining)
        view.poll = 0.05
        writer.start()
        await wait_for(pilot, lambda: len(view.query("SpecPlot")) >= 3)   # loss, lr, grad norms (and evals)
        assert not view.alarms and "training.divergence" not in screen.findings
        writer.diverge.set()
        # keys work while the run is followed: move through the checklist and back
        await pilot.press("tab", "down", "up")
        assert screen.step == "training"
        await wait_for(pilot, lambda: any(a.kind == "divergence" for a in view.alarms))
        await wait_for(pilot, lambda: "training.divergence" in screen.findings)
        finding = screen.findings["training.divergence"]
        assert finding.status == "fail" and "diverging" in finding.title
        assert any("Training alarm" == (n.title or "") for n in app._notifications)
        steps_text = str(screen.query_one("#steps").get_option("training").prompt)
        assert "1 fail" in steps_text                      # the step's status shows the alarm
        # leaving the step hides the view (it goes on following the run); coming back shows the same one
        screen.action_goto(STEPS.index("metrics") + 1)
        await wait_for(pilot, lambda: not view.display)
        screen.action_goto(STEPS.index("training") + 1)
        await wait_for(pilot, lambda: view.display)
        assert len(screen.query(LiveTraining)) == 1
    writer.diverge.set()
    writer.join(DEADLINE)


@pilot_test
async def test_quick_step_changes_mount_one_view(tmp_path, monkeypatch):
    """A step key and the highlight it causes both show the step: the view is mounted once, not twice
    (which raised DuplicateIds and ended the app)."""
    root, _ = _project(tmp_path, monkeypatch)
    app = MltriageApp(root, cursor_blink=False, check_titles=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        for key in ("5", "4", "5", "3", "5", "5"):
            await pilot.press(key)
        await pilot.pause()
        await wait_for(pilot, lambda: len(screen.query(LiveTraining)) == 1)
        assert screen.query_one(LiveTraining).display and screen.step == "training"


def test_alarm_does_not_hide_a_worse_check_result():
    from mltriage.checks.analyses.alarms import Alarm
    from mltriage.checks.findings import Finding

    alarm = Alarm("large_gradients", "warn", 30, "large gradients in layer fc", "clip")
    cid, finding = alarm_finding(alarm, "run.jsonl")
    assert cid == "training.exploding_gradients" and finding.status == "warn"
    findings = {cid: Finding(status="fail", title="exploded", check=cid, step="training")}
    assert not store_alarm(findings, cid, finding) and findings[cid].status == "fail"
    assert store_alarm({}, cid, finding)
    assert alarm_finding(Alarm("other", "warn", 1, "t", "f"), "x") is None


def test_log_specs_from_a_training_log(tmp_path):
    from mltriage.checks.io.logs import read_training_log

    lines = ["epoch,step,train_loss_step,val_loss,val_acc"]
    for s in range(100):
        lines.append(f"{s // 20},{s},{2.0 - s / 100},,")
        if s % 20 == 19:
            lines.append(f"{s // 20},{s},,{1.5 - s / 200},{0.5 + s / 400}")
    (tmp_path / "metrics.csv").write_text("\n".join(lines) + "\n")
    specs = log_specs(read_training_log(tmp_path / "metrics.csv"))
    titles = [s.title for s in specs]
    assert titles[0] == "Training loss (live)" and any("accuracy" in t for t in titles)


@pilot_test
async def test_quitting_on_the_training_step_stops_the_follower(tmp_path, monkeypatch):
    root, path = _project(tmp_path, monkeypatch)
    app = MltriageApp(root, cursor_blink=False, check_titles=False)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.action_goto(STEPS.index("training") + 1)
        await wait_for(pilot, lambda: bool(app.screen.query(LiveTraining)))
        view = app.screen.query_one(LiveTraining)
        await wait_for(pilot, lambda: view.worker is not None and view.worker.is_running)
        stop, worker = view._stop, view.worker
    assert stop.is_set()                                      # unmounted with the app: the thread ends
    t0 = time.monotonic()
    while not worker.is_finished and time.monotonic() - t0 < DEADLINE:
        time.sleep(0.05)
    assert worker.is_finished

"""The Training step's live view (issue 16): the run that trains now, redrawn as its monitor file or
training log grows - loss, learning rate, gradient norm per layer group, eval metrics - with the same
alarms as `mltriage watch` (checks/analyses/alarms.RunWatcher). An alarm changes the step's status (the
widget posts `AlarmRaised`, the screen stores it as the matching check's finding) and raises a
notification with a bell.

All file reading and curve building run in a thread worker that posts `Snapshot` messages; the event
loop only swaps the plots' data, at most once per REDRAW_SECONDS, so keys stay responsive while a large
log is re-read.
"""

from __future__ import annotations

import math
import threading
import time

from mltriage.checks.findings import Finding, PlotSpec, Series
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

POLL_SECONDS = 0.5             # how often the worker looks at the file (a stat when nothing changed)
REDRAW_SECONDS = 1.0           # at most one redraw per second on the event loop
PLOT_POINTS = 400              # points per series drawn (every k-th point of a long run)
LAYER_GROUPS = 6               # gradient norm curves: one per top-level module, the largest few
# Which check an alarm speaks for, so that the step status shows it (alarms.py names the kinds).
ALARM_CHECKS = {"nonfinite_loss": "training.divergence", "divergence": "training.divergence",
                "exploding_gradients": "training.exploding_gradients",
                "large_gradients": "training.exploding_gradients",
                "vanishing_gradients": "training.vanishing_gradients", "valid_rising": "training.overfitting"}
SEVERITY = {"pass": 0, "skipped": 0, "info": 1, "warn": 2, "error": 3, "fail": 3}


def _thin(xs, ys, limit: int = PLOT_POINTS):
    step = max(1, len(xs) // limit)
    xs, ys = list(xs)[::step], list(ys)[::step]
    return xs, [float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan for v in ys]


def _group(layer: str) -> str:
    return layer.split(".")[0] if "." in layer else layer


def monitor_specs(run) -> list[PlotSpec]:
    """Loss, lr, gradient norm per layer group and eval metrics of a monitored run."""
    specs = []
    if run.steps:
        specs.append(PlotSpec("line", "Training loss (live)", [Series("loss", *_thin(run.steps, run.loss))],
                              x_label="step", y_label="loss"))
    if any(isinstance(v, float) and math.isfinite(v) for v in run.lr):
        specs.append(PlotSpec("line", "Learning rate", [Series("lr", *_thin(run.steps[:len(run.lr)], run.lr))],
                              x_label="step", y_label="lr"))
    groups: dict[str, list[float]] = {}
    for name, series in run.layers.items():
        norms = series.get("grad_norm")
        if not norms:
            continue
        total = groups.setdefault(_group(name), [0.0] * len(norms))
        for i, v in enumerate(norms[:len(total)]):
            if not math.isnan(v):
                total[i] += v * v   # the group's norm is the norm of its layers' norms (inf stays inf)
    if groups:
        largest = sorted(groups, key=lambda g: -max((v for v in groups[g] if math.isfinite(v)), default=0.0))
        series = [Series(g, *_thin(run.steps[:len(groups[g])], [math.sqrt(v) for v in groups[g]]))
                  for g in sorted(largest[:LAYER_GROUPS])]
        specs.append(PlotSpec("line", "Gradient norm per layer group", series, x_label="step",
                              y_label="grad norm", y_log=True))
    keys = sorted({k for e in run.evals for k in e})
    if keys:
        series = [Series(k, *_thin([s for s, e in zip(run.eval_steps, run.evals) if k in e],
                                   [e[k] for e in run.evals if k in e])) for k in keys[:LAYER_GROUPS]]
        specs.append(PlotSpec("line", "Eval metrics", series, x_label="step"))
    return specs


def log_specs(curves) -> list[PlotSpec]:
    """The curves of a training log: the mini-batch loss, the losses and the metric per point."""
    specs = []
    if curves.step_loss:
        specs.append(PlotSpec("line", "Training loss (live)", [Series("loss", *_thin(curves.step, curves.step_loss))],
                              x_label="step", y_label="loss"))
    losses = [Series(name, *_thin(curves.index, getattr(curves, role)))
              for name, role in (("train", "train_loss"), ("valid", "valid_loss")) if curves.has(role)]
    if losses:
        specs.append(PlotSpec("line", f"Loss per {curves.index_name}", losses, x_label=curves.index_name,
                              y_label="loss"))
    metrics = [Series(name, *_thin(curves.index, getattr(curves, role)))
               for name, role in (("train", "train_metric"), ("valid", "valid_metric")) if curves.has(role)]
    if metrics:
        specs.append(PlotSpec("line", f"{curves.metric_name or 'metric'} per {curves.index_name}", metrics,
                              x_label=curves.index_name, y_label=curves.metric_name or ""))
    return specs


def _monitored_run(source):
    """The MonitoredRun a monitor source has read so far; None for a training-log source (whose
    follower is a LogFollower, with curves instead of a run)."""
    inner = getattr(source, "inner", None) or source
    return getattr(getattr(inner, "follower", None), "run", None), inner


def source_specs(source) -> list[PlotSpec]:
    run, inner = _monitored_run(source)
    if run is not None:
        return monitor_specs(run)
    curves = getattr(inner, "curves", None)
    return log_specs(curves) if curves is not None else []


def alarm_finding(alarm, source: str) -> tuple[str, Finding] | None:
    """The finding an alarm stands for in the step's check list, or None when no check speaks for it."""
    check_id = ALARM_CHECKS.get(alarm.kind)
    if check_id is None:
        return None
    return check_id, Finding(status=alarm.status, title=f"live: {alarm.title}",
                             detail=f"Raised while following {source}, at step {alarm.step}. Rerun the step for the "
                                    f"full check once the run has gone further.",
                             fix=alarm.fix, evidence={"live_alarm": alarm.to_dict(), "source": source},
                             check=check_id, step="training")


class LiveTraining(Vertical):
    """Curves of the run being trained, redrawn as its file grows, and its alarms."""

    DEFAULT_CSS = """
    LiveTraining { height: auto; border-top: solid $accent; padding: 0 0 1 0; }
    LiveTraining #live-status { color: $text-muted; }
    LiveTraining #live-plots { height: auto; }
    """

    class Snapshot(Message):
        """The worker's view of the run: the plot specs, a status line, the alarms raised since the last one."""

        def __init__(self, specs: list[PlotSpec] | None, status: str, alarms: list) -> None:
            super().__init__()
            self.specs, self.status, self.alarms = specs, status, alarms

    class AlarmRaised(Message):
        """An alarm, as the finding of the check that speaks for it (for the step status)."""

        def __init__(self, alarm, check_id: str, finding: Finding) -> None:
            super().__init__()
            self.alarm, self.check_id, self.finding = alarm, check_id, finding

    def __init__(self, source, description: str, poll: float = POLL_SECONDS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.source, self.description, self.poll = source, description, poll
        self.alarms: list = []
        self._stop = threading.Event()
        self._pending_specs: list[PlotSpec] | None = None
        self._last_draw = 0.0
        self._timer = None
        self.worker = None

    def compose(self):
        yield Static(f"Live: following {self.description}", id="live-status", markup=False)
        yield Vertical(id="live-plots")

    def on_mount(self) -> None:
        self.worker = self.run_worker(self._follow, thread=True, exclusive=True, group="live-training",
                                      exit_on_error=False)

    def on_unmount(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()

    # --- the worker (a thread: no widget is touched here) ------------------------------------------
    def _follow(self) -> None:
        from mltriage.checks.analyses.alarms import RunWatcher

        state = {"watcher": RunWatcher()}

        def new_run():
            state["watcher"] = RunWatcher()

        while not self._stop.is_set():
            try:
                items = self.source.changed(new_run)
                alarms = []
                for kind, step, value, layers in items:
                    watcher = state["watcher"]
                    if kind == "step":
                        alarms += watcher.step(step, value, layers)
                    elif kind == "eval":
                        alarms += watcher.eval(step, value)
                unreadable = [value for kind, _, value, _ in items if kind == "unreadable"]
                if items or alarms:
                    specs = source_specs(self.source)
                    status = self._status(unreadable)
                    self.post_message(self.Snapshot(specs, status, alarms))
                if getattr(self.source, "ended", False):
                    self.post_message(self.Snapshot(None, f"Run ended: {self.description}", []))
                    return
            except Exception as exc:  # a file that vanished mid-read, a damaged record: say it, keep going
                self.post_message(self.Snapshot(None, f"Live view: cannot read {self.description} "
                                                      f"({type(exc).__name__}: {exc})", []))
            self._stop.wait(self.poll)

    def _status(self, unreadable: list[str]) -> str:
        if unreadable:
            return f"Live: {unreadable[-1]}"
        run, inner = _monitored_run(self.source)
        if run is not None:
            last = run.steps[-1] if run.steps else 0
            return f"Live: {run.records} records, step {last} - {self.description}"
        curves = getattr(inner, "curves", None)
        points = len(curves.step_loss or curves.index) if curves is not None else 0
        return f"Live: {points} points - {self.description}"

    # --- the event loop ------------------------------------------------------------------------------
    def on_live_training_snapshot(self, message: Snapshot) -> None:
        message.stop()
        self.query_one("#live-status", Static).update(message.status)
        for alarm in message.alarms:
            self._raise(alarm)
        if message.specs is not None:
            self._pending_specs = message.specs
            wait = REDRAW_SECONDS - (time.monotonic() - self._last_draw)
            if wait <= 0:
                self._redraw()
            elif self._timer is None:
                self._timer = self.set_timer(wait, self._redraw)

    def _raise(self, alarm) -> None:
        self.alarms.append(alarm)
        self.app.bell()
        self.app.notify(f"step {alarm.step}: {alarm.title}\n{alarm.fix}", title="Training alarm",
                        severity="error" if alarm.status == "fail" else "warning", timeout=20, markup=False)
        found = alarm_finding(alarm, self.description)
        if found is not None:
            self.post_message(self.AlarmRaised(alarm, *found))

    def _redraw(self) -> None:
        from .plots import SpecPlot, draw, has_data, plain_spec

        self._timer = None
        specs, self._pending_specs = self._pending_specs, None
        if specs is None:
            return
        self._last_draw = time.monotonic()
        box = self.query_one("#live-plots", Vertical)
        plots = list(box.query(SpecPlot))
        specs = [plain_spec(s) for s in specs if has_data(s)]
        for plot, spec in zip(plots, specs):
            plot.spec = spec
            draw(plot.plt, spec)
            plot.refresh()
        for plot in plots[len(specs):]:
            plot.remove()
        if len(specs) > len(plots):
            box.mount_all([SpecPlot(spec) for spec in specs[len(plots):]])


def live_view_for(config) -> LiveTraining | None:
    """A live view of the project's run when it has a monitor file or names a training log, else None."""
    from ..watch import source_for_config

    try:
        found = source_for_config(config, wait=False)
    except Exception:  # a damaged monitor folder: the checks say what is wrong, the view stays away
        return None
    if found is None:
        return None
    source, description = found
    return LiveTraining(source, description, id="live-training")


def show_for_step(screen, step: str) -> None:
    """Show the live view in the Training step (before its check list), hide it elsewhere."""
    # One view per screen, mounted the first time the Training step is shown and then only hidden on the
    # other steps: it keeps following the run (its alarms still reach the step list and a notification),
    # and mounting is asynchronous, so removing and re-adding on quick step changes would race.
    view = getattr(screen, "live_view", None)
    if view is None:
        if step != "training":
            return
        view = live_view_for(screen.config)
        if view is None:
            return
        screen.live_view = view
        pane = screen.query_one("#right")
        pane.mount(view, before=pane.query_one("#checks-label"))
    view.display = step == "training"


def store_alarm(findings: dict, check_id: str, finding: Finding) -> bool:
    """Keep the alarm as the check's finding unless the check already says something as severe."""
    current = findings.get(check_id)
    if current is not None and SEVERITY.get(current.status, 0) >= SEVERITY.get(finding.status, 0):
        return False
    findings[check_id] = finding
    return True

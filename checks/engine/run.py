"""Running checks inside one process: the loop the worker process uses, also usable in-process.

The run setup (serve.py) normally calls this in the worker process, so that project code that hangs
or crashes can be killed without taking mltriage down; with isolate=False it runs in the caller's.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Callable, Iterable

from .context import RunContext
from ..findings import Finding, SkipCheck, errored, skipped
from ..project.config import ProjectError
from .registry import CheckSpec, tensor_implementation
from ..project.usercode import UserCodeError


# GIL switch interval while imports and prefetching overlap (Python's default is 0.005 s).
PREFETCH_SWITCH_INTERVAL = 0.0002


class CheckTimeout(Exception):
    pass


@contextmanager
def _alarm(seconds: float | None):
    """In-process time limit via SIGALRM (main thread only). The worker process relies on being killed."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise CheckTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_one(spec: CheckSpec, ctx: RunContext, timeout: float | None = None) -> Finding:
    """Run one check; never raises. Missing inputs -> skipped, exceptions -> error."""
    start = time.perf_counter()
    try:
        finding = _run_guarded(spec, ctx, timeout)
    except BaseException as exc:  # KeyboardInterrupt included: turn it into a finding, the runner decides
        if isinstance(exc, KeyboardInterrupt):
            raise
        finding = errored(_failure_title(exc), detail=_failure_detail(exc, ctx))
    finding.check, finding.step = spec.id, spec.step
    finding.seconds = time.perf_counter() - start
    return apply_max_status(finding, getattr(ctx.config, "check_max_status", None) or {})


def apply_max_status(finding: Finding, caps: dict[str, str]) -> Finding:
    """[checks.max_status] (DESIGN §3): a verdict above the team's cap for this check is lowered to the
    cap, and the finding says so and keeps what it found. `error` and `skipped` are not verdicts and
    are never capped: a check that could not run is reported as such."""
    from ..vocab import SEVERITY

    cap = caps.get(finding.check)
    if cap is None or finding.status in ("error", "skipped") or SEVERITY[finding.status] <= SEVERITY[cap]:
        return finding
    found = finding.status
    finding.evidence = {**finding.evidence, "capped_from": found, "max_status": cap}
    note = (f"Capped at {cap} by [checks.max_status] in mltriage.toml: the check found {found}.")
    finding.detail = (finding.detail.rstrip() + "\n\n" + note) if finding.detail else note
    finding.title = f"{finding.title} (capped at {cap}: found {found})"
    finding.status = cap
    return finding


CALLING_CONVENTION = ("mltriage calls the model as model(x), model(*x) when an item's x is a tuple and "
                      "model(**x) when it is a dict (DESIGN §3b): give every input forward() needs as part of x "
                      "(e.g. x = (ids, lengths)), or give the extra parameters defaults.")


def _failure_detail(exc: BaseException, ctx: RunContext) -> str:
    """What the user needs: for a failure in the model's forward() the project's own frames (and how the
    model is called when forward() got the wrong arguments); for a failure of the check, its traceback."""
    from ..project.usercode import user_frames_traceback

    frames = traceback.extract_tb(exc.__traceback__)
    if not any("torch/nn/modules/module.py" in f.filename.replace("\\", "/") for f in frames):
        return "".join(traceback.format_exception(exc))
    message = f"{type(exc).__name__}: {exc}"
    hint = ""
    if isinstance(exc, TypeError) and ("positional argument" in str(exc) or "unexpected keyword" in str(exc)):
        hint = "\n\n" + CALLING_CONVENTION
    return f"the model's forward() raised {message}{hint}\n\n{user_frames_traceback(exc, ctx.root)}".rstrip()


def _failure_title(exc: BaseException) -> str:
    """Name the failure: the model's own forward() (a project bug, e.g. a shape mismatch) or the check."""
    message = (str(exc).strip().splitlines() or [""])[0][:160]
    what = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if any("torch/nn/modules/module.py" in f.filename.replace("\\", "/") for f in frames):
        return f"project code failed: the model's forward() raised {what}"
    return f"the check failed: {what}"


SKIPPED_IN_PROJECT_FILE = "skipped in mltriage.toml"


def _run_guarded(spec: CheckSpec, ctx: RunContext, timeout: float | None) -> Finding:
    if spec.id in (getattr(ctx.config, "check_skip", None) or ()):
        return skipped(SKIPPED_IN_PROJECT_FILE, detail="[checks] skip in mltriage.toml lists this check, so it "
                       "was not run. Remove it from there to run it again.", evidence={"skipped_by": "[checks] skip"})
    # a monitor file alone is enough for dead units and saturation (they read its activation records)
    monitor_only = spec.id in ("architecture.dead_units", "architecture.saturation") and not ctx.missing("gradients")
    if getattr(ctx.config, "logs_only", False) and spec.step != "training" and not monitor_only:
        return skipped("needs data: this project is a training log alone",
                       detail="mltriage.toml has [artifacts] but no [data], so only the training checks, which read "
                       "the log, can run. Add [data] train and target (and [model] for the model checks) for the rest.",
                       evidence={"missing": "data"})
    fn = tensor_implementation(spec) if ctx.is_tensor else spec.fn
    if fn is None:
        return skipped("reads table columns; this project feeds tensors through a Dataset",
                       detail="This check reads the columns of a table. A tensor project (DESIGN §3b: "
                       "make_dataset, an image folder or a LightningDataModule) has none, so it does not apply; "
                       "the tensor checks (data.feature_scale, data.duplicates, data.token_ids, ...) cover it.",
                       evidence={"missing": "table"})
    for need in spec.needs:
        try:
            what = ctx.missing(need)
        except UserCodeError as exc:
            return errored(_user_code_title(exc), detail=_describe(exc))
        except ProjectError as exc:
            return errored(f"could not tell whether {need} is available", detail=_describe(exc))
        if what:
            return skipped(f"needs {what.split(':')[0]}", detail=f"This check needs {what}.",
                           evidence={"missing": need})
    try:
        with _alarm(timeout):
            result = fn(ctx)
    except SkipCheck as exc:
        return skipped(str(exc).splitlines()[0] if str(exc) else "does not apply", detail=str(exc))
    except CheckTimeout:
        return errored(f"timed out after {timeout:.0f} s", detail=f"The check did not finish within its "
                       f"limit of {timeout:.0f} s and was stopped.")
    except UserCodeError as exc:
        return errored(_user_code_title(exc), detail=_describe(exc))
    except ProjectError as exc:
        return errored(str(exc).splitlines()[0][:120], detail=str(exc))
    if not isinstance(result, Finding):
        return errored("the check returned no finding",
                       detail=f"{spec.fn.__module__}.{spec.fn.__name__} returned {type(result).__name__}.")
    return result


def _user_code_title(exc) -> str:
    """"project code failed: ..." when it raised; as it is when it was not run (hung or crashed before)."""
    first = (str(exc).splitlines() or [""])[0]
    return first if getattr(exc, "not_run", False) else f"project code failed: {first}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UserCodeError):
        return f"{exc}\n\n{exc.user_traceback}"
    return str(exc)


# Steps whose checks may run side by side (concurrency > 1) when the project has no code of its own:
# they read the data and shared analyses only. Model-touching steps always run one check at a time.
CONCURRENT_STEPS = ("problem", "data")


def run_specs(specs: Iterable[CheckSpec], ctx: RunContext, on_start: Callable[[CheckSpec], None] | None = None,
              on_finding: Callable[[Finding], None] | None = None,
              default_timeout: float | None = None, concurrency: int = 1) -> list[Finding]:
    """Run checks and report them in order. With concurrency > 1 (the worker process passes the core
    count), consecutive problem/data checks of a project without model code run ahead on a thread
    pool while earlier ones finish: their heavy parts are numpy/pyarrow calls that release the GIL,
    and on two cores the data step's checks take about 40% less wall time. Findings are identical:
    checks share work only through ctx.shared, which computes each analysis once under a lock.

    Project code never runs on the pool (it may not be thread-safe), which is why a project with
    model code runs every check on this thread. A check running ahead has no in-process SIGALRM limit;
    the worker's parent enforces limits by killing the process, and reports the earliest unfinished
    check, which is the one the user sees running."""
    specs = list(specs)
    warm_up(specs, ctx)
    ahead = _RunAhead(specs, ctx, concurrency) if concurrency > 1 and ctx.config.model_code is None else None
    findings = []
    try:
        for index, spec in enumerate(specs):
            if on_start:
                on_start(spec)
            if ahead is not None:
                ahead.schedule_from(index)
            if ahead is not None and ahead.has(spec):
                finding = ahead.result(spec)
            else:
                finding = run_one(spec, ctx, spec.timeout or default_timeout)
            findings.append(finding)
            if on_finding:
                on_finding(finding)
    finally:
        if ahead is not None:
            ahead.close()
    return findings


class _RunAhead:
    """A pool that runs the next few eligible checks while the caller reports earlier ones."""

    def __init__(self, specs: list[CheckSpec], ctx: RunContext, workers: int):
        from concurrent.futures import ThreadPoolExecutor

        self.specs, self.ctx, self.workers = specs, ctx, workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mltriage-check")
        self.futures: dict[str, object] = {}

    def eligible(self, spec: CheckSpec) -> bool:
        return spec.step in CONCURRENT_STEPS

    def schedule_from(self, index: int) -> None:
        """Submit specs index, index+1, ... up to `workers` ahead, stopping at the first one that
        must run on the caller's thread: it then runs after every earlier check has finished."""
        for spec in self.specs[index:index + self.workers]:
            if not self.eligible(spec):
                return
            if spec.id not in self.futures:
                self.futures[spec.id] = self.pool.submit(run_one, spec, self.ctx, None)

    def has(self, spec: CheckSpec) -> bool:
        return spec.id in self.futures

    def result(self, spec: CheckSpec) -> Finding:
        return self.futures.pop(spec.id).result()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def warm_up(specs: list[CheckSpec], ctx: RunContext) -> threading.Thread | None:
    """Start the planned checks' prefetch functions on a background thread, then import the heavy
    libraries they declare on this one.

    The two overlap on two cores: prefetching (hashing, factorising: numpy and pyarrow, which release
    the GIL) runs while imports (pure Python, GIL-bound) load scikit-learn and friends. On the
    1,000,000-row data benchmark this hides about 0.8 s. Failures are left for the checks themselves
    to meet: ctx.shared caches a prefetch's exception and re-raises it in the check that asks."""
    import importlib

    prefetches = []
    for spec in specs:
        if spec.prefetch is not None and spec.prefetch not in prefetches:
            prefetches.append(spec.prefetch)

    def prefetch_all():
        for fn in prefetches:
            try:
                fn(ctx)
            except BaseException:  # noqa: BLE001 - cached by ctx.shared, reported by the check
                pass

    thread = None
    if prefetches:
        thread = threading.Thread(target=prefetch_all, name="mltriage-prefetch", daemon=True)
        thread.start()
    # While both threads run, hand the GIL over more often than every 5 ms: the prefetch thread makes
    # many short numpy calls and would otherwise wait a whole interval for the importing thread after
    # each one (the convoy effect); measured, this halves the time the prefetch takes during imports.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(PREFETCH_SWITCH_INTERVAL)
    try:
        for module in dict.fromkeys(m for spec in specs if _may_run(spec, ctx) for m in spec.imports):
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001 - the check imports it again and reports the failure
                pass
    finally:
        sys.setswitchinterval(interval)
    return thread


# Needs that can be judged from the data alone: a check missing one is skipped, so its imports are not
# worth loading (e.g. cleanlab for a regression project). Model needs would run project code here.
_DATA_NEEDS = ("classification", "test", "text")


def _may_run(spec: CheckSpec, ctx: RunContext) -> bool:
    try:
        if not ctx.is_tensor and any(need in ("images", "tokens") for need in spec.needs):
            return False  # a table project has neither: warming data.image_quality imports cleanvision (0.5-0.7 s)
        return not any(ctx.missing(need) for need in spec.needs if need in _DATA_NEEDS)
    except Exception:  # noqa: BLE001 - the check meets the problem and reports it
        return False

"""The `mltriage` command line (DESIGN §4, contract).

Exit codes of `check`: 0 nothing at or above --fail-on, 1 otherwise (an `error` finding counts: a check
that could not run is not a pass), 2 the project could not be checked (nothing could run); 128 + N when
signal N (SIGTERM, SIGHUP, SIGINT) stopped it, after killing the worker's process group. Expected
problems print one clear paragraph and no traceback (unless --debug). This module imports nothing
heavy at start-up so that `mltriage --help` is instant.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
from pathlib import Path

from mltriage.checks.vocab import SEVERITY, STEPS

SUBCOMMANDS = ("check", "init", "report", "tour", "watch")
EXIT_OK, EXIT_FINDINGS, EXIT_UNUSABLE = 0, 1, 2


class UsageError(Exception):
    """A mistake in the command line itself: shown with a hint, exit 2."""


class Unusable(Exception):
    """The run happened but nothing could be checked (every check errored or was skipped for lack of a
    working project): the message is shown, exit 2."""


class Stopped(BaseException):
    """SIGTERM, SIGHUP or SIGINT arrived during `check`: the worker's process group is already dead."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class OutputClosed(Exception):
    """Standard output was closed by its reader (`mltriage check | head -1`): exit quietly."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mltriage",
        description="A guided debugging assistant for machine-learning models. Run `mltriage [PROJECT]` to "
                    "open the app, or `mltriage check` to run the checks headless.",
        epilog="PROJECT is a folder with mltriage.toml, or the file itself (default: the current folder).")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="{check,init,report,tour,watch}")

    check = sub.add_parser("check", help="run the checks headless and print the findings",
                           description="Run the checks headless. Exit 0: nothing at or above --fail-on; "
                                       "1: findings at or above it, or a check that errored; 2: the project "
                                       "could not be checked (nothing could run). SIGTERM, SIGHUP and ^C stop "
                                       "the checks still running (exit 128 + the signal).")
    check.add_argument("project", nargs="?", default=".", help="project folder or mltriage.toml (default: .)")
    check.add_argument("--steps", help=f"comma-separated steps to run (default: all): {','.join(STEPS)}")
    check.add_argument("--checks", help="comma-separated check ids to run, e.g. data.split_overlap,sanity.loss_at_init "
                                        "(default: every check of --steps)")
    check.add_argument("--format", choices=("text", "json", "markdown", "junit"), default="text")
    check.add_argument("--output", "-o", help="write the report to this file instead of standard output")
    check.add_argument("--fail-on", choices=("fail", "warn"), default="fail",
                       help="lowest status that makes the exit code 1 (default: fail)")
    check.add_argument("--budget", type=float, help="seconds of model training allowed (overrides [budget] seconds)")
    check.add_argument("--device", default="cpu", help="torch device for model checks (default: cpu; e.g. cuda)")
    check.add_argument("--check-timeout", type=float, help="seconds before a single check is stopped")
    check.add_argument("--export-rows", metavar="DIR",
                       help="write one CSV per non-pass finding that names rows (the rows, their id column, the "
                            "values that matter, the score) into DIR; the JSON finding names its file")
    check.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    init = sub.add_parser("init", help="write a starter mltriage.toml by inspecting the data")
    init.add_argument("--data", help="the training data file (.csv .tsv .parquet .jsonl .npz); default: the one "
                                     "data file found here or in data/")
    init.add_argument("--target", help="the label column (default: guessed)")
    init.add_argument("--valid", help="the validation data file")
    init.add_argument("--test", help="the test data file")
    init.add_argument("--output", "-o", default="mltriage.toml", help="where to write (default: ./mltriage.toml)")
    init.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    report = sub.add_parser("report", help="export the last session as Markdown, HTML or JSON")
    report.add_argument("project", nargs="?", default=".")
    report.add_argument("--format", choices=("markdown", "html", "json"), default="markdown")
    report.add_argument("--output", "-o", help="write to this file instead of standard output")
    report.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    watch = sub.add_parser("watch", help="follow a training run while it trains and print alarms",
                           description="Follow the run's monitor file (mltriage.monitor) or training log as it "
                                       "grows and print alarms as they happen. Exit 0 when the run ends, 1 with "
                                       "--until-alarm at the first fail, 2 when there is nothing to watch.")
    watch.add_argument("project", nargs="?", default=".", help="project folder or mltriage.toml (default: .)")
    watch.add_argument("--log", help="the log or monitor file to follow (default: the project's monitor file, "
                                     "else its [artifacts] training_log)")
    watch.add_argument("--until-alarm", action="store_true", help="exit 1 at the first fail alarm")
    watch.add_argument("--format", choices=("text", "jsonl"), default="text")
    watch.add_argument("--idle", type=float, default=None,
                       help="end when the log has not grown for this many seconds (default: wait for the "
                            "monitor's closing line)")
    watch.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    tour = sub.add_parser("tour", help="the onboarding bug hunts on the sample projects")
    tour.add_argument("--list", action="store_true", help="print the exercises and exit")
    tour.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    return parser


def parse_steps(text: str | None) -> list[str] | None:
    if not text:
        return None
    steps = [s.strip() for s in text.split(",") if s.strip()]
    for step in steps:
        if step not in STEPS:
            from mltriage.checks.project.config import did_you_mean

            raise UsageError(f"--steps: unknown step '{step}'.{did_you_mean(step, STEPS)} "
                             f"Steps are: {', '.join(STEPS)}.")
    return steps


def parse_checks(text: str | None, steps: list[str] | None) -> list[str] | None:
    """--checks ID,ID: known ids (else a UsageError naming the unknown one), each once, in the given order."""
    if text is None:
        return None
    wanted = list(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    if not wanted:
        raise UsageError("--checks names no check. Give check ids separated by commas, e.g. "
                         "--checks data.split_overlap,sanity.loss_at_init.")
    from mltriage.checks.engine.registry import all_checks
    from mltriage.checks.project.config import did_you_mean

    known = all_checks()
    for cid in wanted:
        if cid not in known:
            raise UsageError(f"--checks: unknown check id '{cid}'.{did_you_mean(cid, list(known))} Check ids "
                             f"are step.name, e.g. data.split_overlap; the ids of a run are in its report.")
        if steps and known[cid].step not in steps:
            raise UsageError(f"--checks: '{cid}' is not in --steps {','.join(steps)}. Drop --steps or add "
                             f"its step ({known[cid].step}).")
    return wanted


def positive_seconds(option: str, value: float | None) -> float | None:
    """--budget/--check-timeout: a finite number above zero (NaN would disable every limit: nan <= 0 is false)."""
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{option} must be a positive, finite number of seconds, got {value}.")
    return float(value)


_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def _fall_back_to_cpu(device: str, why: str) -> str:
    """Issue 14: an absent GPU is not a reason to check nothing. Say so once, then run on the CPU (the
    seeded checks give the same findings there, only slower)."""
    print(f"mltriage: --device {device}: {why}; running the model checks on --device cpu instead.",
          file=sys.stderr)
    return "cpu"


def check_device(device: str) -> str:
    """--device: cpu, cuda, cuda:N or mps, and present on this machine (one message, before anything runs)."""
    if not _DEVICE.match(device or ""):
        raise UsageError(f"--device '{device}' is not a device. Use cpu, cuda, cuda:N (the N-th GPU) or mps.")
    if device == "cpu":
        return device
    try:
        import torch
    except ImportError:
        raise UsageError(f"--device {device} needs PyTorch, which is not installed here. Use --device cpu.") from None
    if device == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            return _fall_back_to_cpu(device, "no Apple GPU (MPS) is available here")
        return device
    if not torch.cuda.is_available():
        built = "this PyTorch build has no CUDA support" if torch.version.cuda is None \
            else "PyTorch sees no CUDA GPU (driver, CUDA_VISIBLE_DEVICES?)"
        return _fall_back_to_cpu(device, built)
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise UsageError(f"--device {device}: this machine has {count} CUDA GPU(s), numbered 0 to {count - 1}.")
    return device


def check_output_path(output: str | None) -> None:
    """Refuse an --output that cannot be written before the run, not after minutes of checks."""
    if not output:
        return
    path = Path(output)
    if path.is_dir():
        raise UsageError(f"--output {output} is a folder. Name a file to write the report to.")
    if re.match(r"^/(dev/fd|proc/self/fd)/\d+$", output) and not path.exists():
        raise UsageError(f"--output {output}: file descriptor {output.rsplit('/', 1)[1]} is not open in this "
                         f"shell. Open it (e.g. `3>report.json`) or name a file.")


def check_export_rows(folder: str | None):
    """--export-rows: refused before the run when it names a file (the folder is created when missing)."""
    if folder is None:
        return None
    from mltriage.checks.io.row_export import RowExportError, check_export_folder

    try:
        return check_export_folder(folder)
    except RowExportError as exc:
        raise UsageError(str(exc)) from None


def export_finding_rows(findings, folder) -> None:
    """Write the rows after the run; a folder that became unwritable costs the export, not the report."""
    from mltriage.checks.io.row_export import RowExportError, export_rows

    try:
        written = export_rows(findings, folder)
    except (OSError, RowExportError) as exc:
        _say(f"mltriage: note: the rows could not be written to {folder} "
             f"({getattr(exc, 'strerror', None) or exc}); the report is complete without them.")
        return
    if not written:
        _say(f"mltriage: no finding of this run names rows; nothing was written to {folder}.")


def exit_code_for(findings: list[dict], fail_on: str) -> int:
    """1 when a finding is at or above --fail-on, or is an `error` (a check that could not run is not a
    pass, DESIGN §4); else 0."""
    threshold = SEVERITY[fail_on]
    bad = any(f["status"] == "error" or SEVERITY[f["status"]] >= threshold for f in findings)
    return EXIT_FINDINGS if bad else EXIT_OK


def nothing_checked(findings: list[dict]) -> str | None:
    """The message for a run in which no check ran to a verdict (every one errored or was skipped), else
    None: a CI gate that checked nothing must not pass."""
    if not findings or any(f["status"] not in ("error", "skipped") for f in findings):
        return None
    errors = [f for f in findings if f["status"] == "error"]
    if not errors:
        reasons = sorted({f["title"] for f in findings})
        shown = "; ".join(reasons[:3]) + (f"; ... and {len(reasons) - 3} more" if len(reasons) > 3 else "")
        return (f"nothing was checked: all {len(findings)} selected checks were skipped ({shown}). Add what "
                f"they need to mltriage.toml, or select other --steps/--checks.")
    first = errors[0]
    return (f"nothing could be checked: {len(errors)} of {len(findings)} checks errored and the rest were "
            f"skipped. The first error, {first['check']}: {first['title']}.\nFix that and run again; the "
            f"report above (or in --output) has every error's detail.")


def _say(text: str) -> None:
    """A message on stderr; a closed or hung-up terminal is not worth a traceback."""
    try:
        print(text, file=sys.stderr)
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """After stdout failed, point it at /dev/null so that the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _is_special(output: str) -> bool:
    """An existing target that is not a regular file once links are followed (a pipe behind /dev/stdout
    or /dev/fd/N, a FIFO, a terminal, /dev/null): never replaced by a rename, written where it is."""
    import stat

    try:
        return not stat.S_ISREG(os.stat(output).st_mode) and not stat.S_ISDIR(os.stat(output).st_mode)
    except OSError:
        return False


def write_output(text: str, output: str | None) -> None:
    text = text if text.endswith("\n") else text + "\n"
    if output:
        from mltriage.checks.io.state import atomic_write_text

        try:
            if _is_special(output):  # /dev/stdout, /dev/fd/N, a FIFO, a terminal: written in place
                with open(output, "w", encoding="utf-8") as handle:
                    handle.write(text)
                return
            atomic_write_text(Path(output), text)
        except BrokenPipeError:  # a FIFO or /dev/stdout whose reader went away
            raise OutputClosed() from None
        except OSError as exc:
            raise Unusable(f"--output {output}: the report could not be written "
                           f"({exc.strerror or exc}).") from None
        return
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        raise OutputClosed() from None
    except OSError as exc:
        _silence_stdout()
        raise Unusable(f"the report could not be written to standard output ({exc.strerror or exc}).") from None


def _stop_on_signals():
    """SIGTERM/SIGHUP/SIGINT during `check`: kill the workers' process groups at once (project code
    must not go on training on a shared box), then unwind. Returns a function restoring the old handlers."""
    from mltriage.checks.engine.supervisor import kill_workers

    raised = []

    def on_signal(signum, frame):
        kill_workers()
        if not raised:  # once: a second signal during the clean-up must not interrupt it
            raised.append(signum)
            raise Stopped(signum)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, on_signal)
        except (ValueError, OSError, AttributeError):  # not the main thread, or no such signal here
            pass

    def restore():
        for sig, handler in previous.items():
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError):
                pass

    return restore


class Progress:
    """One self-overwriting line on stderr while checks run; silent when stderr is not a terminal."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.total = 0
        self.done = 0

    def plan(self, checks: list[dict]) -> None:
        self.total = len(checks)

    def start(self, check_id: str) -> None:
        if self.enabled:
            line = f"[{self.done + 1}/{self.total}] {check_id} ..."
            sys.stderr.write("\r\033[K" + line[:79])
            sys.stderr.flush()

    def finding(self, finding) -> None:
        self.done += 1

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def cmd_check(args) -> int:
    from mltriage.checks.project.config import load_project
    from mltriage.checks.io.report import render
    from mltriage.checks.engine.supervisor import RunOptions, run_checks
    from mltriage.checks.io.state import save_run

    steps = parse_steps(args.steps)
    budget = positive_seconds("--budget", args.budget)
    check_timeout = positive_seconds("--check-timeout", args.check_timeout)
    check_output_path(args.output)
    export_folder = check_export_rows(args.export_rows)
    config = load_project(args.project)
    checks = parse_checks(getattr(args, "checks", None), steps)
    device = check_device(args.device)
    progress = Progress(sys.stderr.isatty())
    options = RunOptions(steps=steps, checks=checks, budget=budget, device=device, check_timeout=check_timeout)
    restore = _stop_on_signals()
    try:
        result = run_checks(config, options, on_plan=progress.plan, on_start=progress.start,
                            on_finding=progress.finding)
    finally:
        restore()
        try:
            progress.close()
        except (OSError, ValueError):
            pass
    if export_folder is not None:
        export_finding_rows(result.findings, export_folder)
    run = result.to_dict()
    try:
        save_run(config.root, run)
    except OSError as exc:
        _say(f"mltriage: note: could not save the run under {config.state_dir} ({exc.strerror}); "
             f"history and regression checks will not see it.")
    color = args.format == "text" and not args.output and sys.stdout.isatty()
    text = render(run, args.format, fail_on=args.fail_on, **({"color": color} if args.format == "text" else {}))
    code = exit_code_for(run["findings"], args.fail_on)
    try:
        write_output(text, args.output)
    except OutputClosed:
        return code  # the reader has what it wanted (`| head`): the verdict still stands
    unusable = nothing_checked(run["findings"])
    if unusable:
        raise Unusable(unusable)
    return code


def cmd_init(args) -> int:
    from mltriage.checks.project.starter import write_starter

    from mltriage.checks.project.starter import find_data_file

    data = Path(args.data) if args.data else find_data_file(Path.cwd())
    path = write_starter(data, target=args.target, valid=args.valid, test=args.test,
                         output=Path(args.output))
    print(f"Wrote {path}. Review it, then run: mltriage check {path.parent}")
    return EXIT_OK


def cmd_report(args) -> int:
    from mltriage.checks.project.config import load_project
    from mltriage.checks.io.report import render_session

    config = load_project(args.project)
    write_output(render_session(config, args.format, output=args.output), args.output)
    return EXIT_OK


def cmd_tour(args) -> int:
    try:
        from mltriage.tui.tour import run_tour
    except ImportError:
        print("The tour is not available in this build.", file=sys.stderr)
        return EXIT_UNUSABLE
    return run_tour(list_only=args.list)


def cmd_watch(args) -> int:
    from mltriage.tui.watch import cmd_watch as watch

    return watch(args)


def cmd_app(project: str | None) -> int:
    try:
        from mltriage.tui.app import run_app
    except ImportError:
        print(f"mltriage: the app would open {Path(project or '.').resolve()}; it is not built yet. "
              f"Use `mltriage check {project or '.'}`.")
        return EXIT_OK
    return run_app(project)


def is_project_error(exc: BaseException) -> bool:
    """A ProjectError, without importing the project-file parser for `--help`: when its module was never
    loaded, nothing can have raised one."""
    config = sys.modules.get("mltriage.checks.project.config")
    return config is not None and isinstance(exc, config.ProjectError)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        if argv and not argv[0].startswith("-") and argv[0] not in SUBCOMMANDS:
            # `mltriage PROJECT`: open the app on that project.
            extra = [a for a in argv[1:] if a != "--debug"]
            if extra:
                raise UsageError(f"unexpected arguments after the project: {' '.join(extra)}. "
                                 f"Did you mean `mltriage check {argv[0]} ...`?")
            return cmd_app(argv[0])
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            return cmd_app(None)
        handler = {"check": cmd_check, "init": cmd_init, "report": cmd_report, "tour": cmd_tour,
                   "watch": cmd_watch}[args.command]
        return handler(args)
    except UsageError as exc:
        _say(f"mltriage: {exc}\nRun `mltriage --help` for usage.")
        return EXIT_UNUSABLE
    except Unusable as exc:
        _say(f"mltriage: {exc}")
        return EXIT_UNUSABLE
    except OutputClosed:
        return EXIT_OK
    except Stopped as exc:
        name = signal.Signals(exc.signum).name
        _say(f"mltriage: stopped by {name}; the checks still running were stopped with it.")
        return 128 + exc.signum
    except KeyboardInterrupt:
        _say("mltriage: interrupted.")
        return 130
    except Exception as exc:
        if is_project_error(exc):
            _say(f"mltriage: {exc}")
            return EXIT_UNUSABLE
        if debug:
            raise
        import traceback

        last = traceback.format_exc().strip().splitlines()[-1]
        _say(f"mltriage: internal error: {last}\nThis is a bug in mltriage. Run again with --debug for the "
             f"full traceback and report it.")
        return EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())

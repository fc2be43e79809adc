"""The `mltriage` command line (DESIGN §4, contract).

Exit codes of `check`: 0 nothing at or above --fail-on, 1 otherwise, 2 the project could not be
checked. Expected problems print one clear paragraph and no traceback (unless --debug). This
module imports nothing heavy at start-up so that `mltriage --help` is instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mltriage.checks.findings import SEVERITY
from mltriage.checks.project.config import ProjectError
from mltriage.checks.engine.registry import STEPS

SUBCOMMANDS = ("check", "init", "report", "tour", "watch")
EXIT_OK, EXIT_FINDINGS, EXIT_UNUSABLE = 0, 1, 2


class UsageError(Exception):
    """A mistake in the command line itself: shown with a hint, exit 2."""


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
                                       "1: findings at or above it; 2: the project could not be checked.")
    check.add_argument("project", nargs="?", default=".", help="project folder or mltriage.toml (default: .)")
    check.add_argument("--steps", help=f"comma-separated steps to run (default: all): {','.join(STEPS)}")
    check.add_argument("--format", choices=("text", "json", "markdown", "junit"), default="text")
    check.add_argument("--output", "-o", help="write the report to this file instead of standard output")
    check.add_argument("--fail-on", choices=("fail", "warn"), default="fail",
                       help="lowest status that makes the exit code 1 (default: fail)")
    check.add_argument("--budget", type=float, help="seconds of model training allowed (overrides [budget] seconds)")
    check.add_argument("--device", default="cpu", help="torch device for model checks (default: cpu; e.g. cuda)")
    check.add_argument("--check-timeout", type=float, help="seconds before a single check is stopped")
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


def exit_code_for(findings: list[dict], fail_on: str) -> int:
    threshold = SEVERITY[fail_on]
    return EXIT_FINDINGS if any(SEVERITY[f["status"]] >= threshold for f in findings) else EXIT_OK


def write_output(text: str, output: str | None) -> None:
    if output:
        from mltriage.checks.io.state import atomic_write_text

        atomic_write_text(Path(output), text if text.endswith("\n") else text + "\n")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()


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
    if args.budget is not None and args.budget <= 0:
        raise UsageError("--budget must be a positive number of seconds.")
    config = load_project(args.project)
    progress = Progress(sys.stderr.isatty())
    options = RunOptions(steps=steps, budget=args.budget, device=args.device, check_timeout=args.check_timeout)
    try:
        result = run_checks(config, options, on_plan=progress.plan, on_start=progress.start,
                            on_finding=progress.finding)
    finally:
        progress.close()
    run = result.to_dict()
    try:
        save_run(config.root, run)
    except OSError as exc:
        print(f"mltriage: note: could not save the run under {config.state_dir} ({exc.strerror}); "
              f"history and regression checks will not see it.", file=sys.stderr)
    color = args.format == "text" and not args.output and sys.stdout.isatty()
    write_output(render(run, args.format, **({"color": color} if args.format == "text" else {})), args.output)
    return exit_code_for(run["findings"], args.fail_on)


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
    write_output(render_session(config, args.format), args.output)
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
    except ProjectError as exc:
        print(f"mltriage: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except UsageError as exc:
        print(f"mltriage: {exc}\nRun `mltriage --help` for usage.", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        print("mltriage: interrupted.", file=sys.stderr)
        return 130
    except Exception:
        if debug:
            raise
        import traceback

        last = traceback.format_exc().strip().splitlines()[-1]
        print(f"mltriage: internal error: {last}\nThis is a bug in mltriage. Run again with --debug for the "
              f"full traceback and report it.", file=sys.stderr)
        return EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())

"""Import the project's own code and call it, turning its failures into clear messages.

Project code is named in mltriage.toml and run on purpose, as pytest runs conftest.py. Its
tracebacks are trimmed to the project's own frames so the user sees their bug, not ours.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from types import ModuleType

from .config import ProjectConfig, ProjectError

# name in mltriage.toml -> (parameter names of the contract, description for messages)
SIGNATURES = {
    "build": (("n_inputs", "n_outputs"), "build_model(n_inputs: int, n_outputs: int) -> torch.nn.Module | sklearn estimator"),
    "featurize": (("fit_df", "df"), "featurize(fit_df: DataFrame, df: DataFrame) -> 2-D float array"),
    "train_step": (("model", "optimizer", "loss_fn", "xb", "yb"), "train_step(model, optimizer, loss_fn, xb, yb) -> float"),
    "predict": (("model", "X"), "predict(model, X) -> scores (n, n_outputs) or (n,)"),
    "loss": ((), "loss() -> torch loss module"),
    "optimizer": (("params", "lr"), "make(params, lr) -> torch optimizer"),
    # tensor projects (DESIGN §3b)
    "dataset": (("split",), "make_dataset(split: str) -> torch.utils.data.Dataset of (x, y) items"),
    "collate": (("batch",), "collate(batch: list of (x, y) items) -> (xb, yb)"),
    "decode": (("ids",), "decode(ids: list[int]) -> str"),
    "scheduler": (("optimizer",), "make_scheduler(optimizer) -> torch lr scheduler (stepped once per batch)"),
    "lightning": ((), "a LightningModule class, built with no arguments"),
    "datamodule": ((), "a LightningDataModule class, built with no arguments"),
}
# Other parameter lists a role accepts: build_model() with no parameters (DESIGN §3b).
ALTERNATIVE_PARAMS = {"build": [()]}


class ProjectFunction:
    """A project function resolved for a role. Calls pass straight through; call_user reads `role`,
    `hung` (where it hung in an earlier worker, or None) and `crashed` (how it ended an earlier worker's
    process, or None) from here."""

    __slots__ = ("fn", "role", "hung", "crashed")

    def __init__(self, fn, role: str, hung: str | None = None, crashed: str | None = None):
        self.fn, self.role, self.hung, self.crashed = fn, role, hung, crashed

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __getattr__(self, name):  # only for names not found on the wrapper itself
        if name in ProjectFunction.__slots__:
            raise AttributeError(name)  # not yet set (copy, pickle): never recurse
        return getattr(self.fn, name)

    def __repr__(self) -> str:
        return f"ProjectFunction({self.role}: {self.fn!r})"


class UserCodeError(Exception):
    """Project code raised. `user_traceback` holds only the project's frames."""

    def __init__(self, message: str, user_traceback: str = "", not_run: bool = False):
        super().__init__(message)
        self.user_traceback = user_traceback
        # True: the code was not called at all (it hung or ended the process in an earlier check)
        self.not_run = not_run


def user_frames_traceback(exc: BaseException, root: Path | None) -> str:
    """Format a traceback keeping the frames from files under `root` (the project) and the error line."""
    frames = traceback.extract_tb(exc.__traceback__)
    if root is not None:
        root_str = str(Path(root).resolve())
        kept = [f for f in frames if f.filename.startswith(root_str)]
        frames = traceback.StackSummary.from_list(kept or frames[-1:])
    lines = ["Traceback (project frames only):\n"] + traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def import_project_code(config: ProjectConfig) -> ModuleType:
    code = config.model_code
    assert code is not None
    _set_role("import")  # a crash or a hang now is the module's import (see track_roles)
    try:
        return _import(config, code)
    finally:
        _set_role(None)


def _import(config: ProjectConfig, code: str) -> ModuleType:
    root = str(config.root)
    if root not in sys.path:
        sys.path.insert(0, root)  # so project code can import its sibling modules
    try:
        if code.endswith(".py") or "/" in code:
            path = (config.root / code).resolve()
            name = f"mltriage_project_{abs(hash(str(path)))}"
            if name in sys.modules:
                return sys.modules[name]
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ProjectError(f"{config.path}: [model] code = \"{code}\" cannot be loaded as a Python module.")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
            return module
        return importlib.import_module(code)
    except ProjectError:
        raise
    except (Exception, SystemExit) as exc:
        where = "the module" if not code.endswith(".py") else code
        raise ProjectError(
            f"{config.path}: [model] code = \"{code}\" failed to import ({type(exc).__name__}: {exc}).\n"
            f"Fix {where} so that `python -c 'import ...'` works from {config.root}.\n\n"
            f"{user_frames_traceback(exc, config.root)}"
        ) from None


def resolve_function(config: ProjectConfig, module: ModuleType, role: str, name: str,
                     hung: dict[str, str] | None = None, crashed: dict[str, str] | None = None) -> ProjectFunction:
    """The function `name` of the project module, checked against the contract signature of `role`.
    `hung`: the run's hung roles (role -> where it hung in an earlier worker): such a function is not
    called again, so later checks get a quick error instead of waiting out their time limit."""
    params, described = SIGNATURES[role]
    fn = getattr(module, name, None)
    if fn is None:
        public = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        from .config import did_you_mean

        raise ProjectError(
            f"{config.path}: [model] {role} = \"{name}\" is not defined in {config.model_code}."
            f"{did_you_mean(name, public)}\nExpected: {described}"
        )
    if not callable(fn):
        raise ProjectError(f"{config.path}: [model] {role} = \"{name}\" in {config.model_code} is not a function. "
                           f"Expected: {described}")
    try:
        _bind_any(fn, [params] + ALTERNATIVE_PARAMS.get(role, []))
    except TypeError:
        raise ProjectError(
            f"{config.path}: {name}{inspect.signature(fn)} in {config.model_code} has the wrong signature "
            f"for [model] {role}.\nExpected: {described}"
        ) from None
    except ValueError:
        pass  # builtins without a signature: trust them
    return ProjectFunction(fn, role, (hung or {}).get(role), (crashed or {}).get(role))


def _bind_any(fn, param_lists) -> None:
    """TypeError unless fn can be called with one of the parameter lists (by position)."""
    signature = inspect.signature(fn)
    for params in param_lists:
        try:
            signature.bind(*([None] * len(params)))
            return
        except TypeError:
            continue
    raise TypeError("no parameter list fits")


def accepts_no_arguments(fn) -> bool:
    """Whether fn can be called with no arguments (build_model() of a tensor project)."""
    try:
        inspect.signature(getattr(fn, "fn", fn)).bind()
        return True
    except TypeError:
        return False
    except ValueError:
        return False


# --- which project role is running: read by the supervisor after the worker dies -------------------
# The worker maps a small file the supervisor created (ROLE_FILE_VAR names it) and call_user writes the
# role it is about to call into it (a memory write, no system call: train_step runs once per batch).
# When a project function ends the process (os._exit, a segfault in an extension) the supervisor reads
# the role back, tells the user which function it was, and the next worker does not call it again.
ROLE_FILE_VAR = "MLTRIAGE_ROLE_FILE"
ROLE_SLOT_BYTES = 32
_role_slot = None  # an mmap of ROLE_SLOT_BYTES bytes, or None (in-process runs: nothing to tell)


def track_roles(path: str | None) -> None:
    """Write the running role into `path` from now on (the worker calls this at start)."""
    global _role_slot
    if not path:
        return
    try:
        import mmap

        with open(path, "r+b") as handle:
            _role_slot = mmap.mmap(handle.fileno(), ROLE_SLOT_BYTES)
    except (OSError, ValueError, ImportError):
        _role_slot = None


def read_role_file(path) -> str | None:
    """The role a worker was running when it ended (None: no project function was running)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(ROLE_SLOT_BYTES)
    except OSError:
        return None
    name = raw.split(b"\0", 1)[0].decode("ascii", "replace").strip()
    return name or None


def _set_role(role: str | None) -> None:
    if _role_slot is not None:
        _role_slot[:ROLE_SLOT_BYTES] = (role or "").encode("ascii", "replace")[:ROLE_SLOT_BYTES].ljust(
            ROLE_SLOT_BYTES, b"\0")


def _current_role() -> str | None:
    if _role_slot is None:
        return None
    return _role_slot[:ROLE_SLOT_BYTES].split(b"\0", 1)[0].decode("ascii", "replace") or None


def role_of(what: str, fn) -> str | None:
    """The project role a call_user call runs: the resolved function's, or "model" for the model itself
    (its forward, an estimator's fit/predict), "loss"/"optimizer" for those factory functions."""
    if isinstance(fn, ProjectFunction):
        return fn.role
    if "forward" in what or "estimator" in what:
        return "model"
    for role in ("loss", "optimizer"):
        if what.startswith(role):
            return role
    return None


def call_user(config: ProjectConfig, what: str, fn, *args, passthrough: tuple = (), **kwargs):
    """Call project code; an exception becomes UserCodeError with the project's frames (except the
    `passthrough` exception types, re-raised as they are: e.g. make_dataset's KeyError for a split it has
    not got)."""
    if isinstance(fn, ProjectFunction) and fn.hung is not None:
        raise UserCodeError(f"{what} was not called: it hung in an earlier check and was stopped", fn.hung,
                            not_run=True)
    if isinstance(fn, ProjectFunction) and fn.crashed is not None:
        raise UserCodeError(f"{what} was not called again: it ended the check process in an earlier check",
                            fn.crashed, not_run=True)
    previous = _current_role() if _role_slot is not None else None
    if _role_slot is not None:
        _set_role(role_of(what, fn) or previous)
    try:
        return fn(*args, **kwargs)
    except passthrough:
        raise
    except Exception as exc:
        raise UserCodeError(f"{what} raised {type(exc).__name__}: {exc}",
                            user_frames_traceback(exc, config.root)) from exc
    finally:
        if _role_slot is not None:
            _set_role(previous)

"""The run context: everything a check may ask for, loaded lazily and computed at most once per run.

Checks receive a RunContext. Expensive inputs (the splits, the featurised matrices, the project's
code, shared analyses such as out-of-fold probabilities or a reference training run) are cached
here so that every check that needs them pays for them once. An analysis more than one check reads is
declared with `@analysis` (engine/analysis.py), which caches it here through `shared`.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Hashable

from ..project.config import ProjectConfig, ProjectError, did_you_mean
from ..io.readers import read_table
from ..findings import SkipCheck
from ..project.usercode import accepts_no_arguments, call_user, import_project_code, resolve_function
from ..vocab import default_loss, default_metric, loss_info
from .tensor_context import TENSOR_TARGET, TensorProjectMixin

# project functions mltriage may call, by their [model] key
PROJECT_ROLES = ("build", "featurize", "train_step", "predict", "dataset", "collate", "decode", "scheduler",
                 "lightning", "datamodule")
SEED = 0
HOLDOUT_FRACTION = 0.2
# Integer targets with at most this many distinct values are read as class labels.
MAX_CLASSES_FOR_INT_TARGET = 50
TEXT_MIN_MEAN_LENGTH = 30  # a string column whose values average this long is free text


def cpu_clock() -> float:
    """The clock every training ceiling is read on: CPU seconds of this process. A busy machine stretches
    wall time but not the CPU a step costs, so a ceiling read on this clock stops training at the same
    step on an idle laptop and on a loaded training box, and the same project gives the same findings."""
    return time.process_time()


class Budget:
    """The ceiling on model training seconds for one run (`[budget] seconds`), shared by all checks."""

    def __init__(self, seconds: float, used: float = 0.0):
        self.seconds = float(seconds)
        self.used = float(used)

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.used)

    def exhausted(self) -> bool:
        return self.remaining() <= 0.0

    @contextmanager
    def spend(self):
        """Count the CPU time of the enclosed block against the budget (cpu_clock: not wall time)."""
        start = cpu_clock()
        try:
            yield self
        finally:
            self.used += cpu_clock() - start


class RunContext(TensorProjectMixin):
    def __init__(self, config: ProjectConfig, budget_seconds: float | None = None, device: str = "cpu",
                 seed: int = SEED, hung_roles: dict[str, str] | None = None,
                 crashed_roles: dict[str, str] | None = None):
        self.config = config
        # project functions that hung in an earlier worker of this run (role -> where): not called again;
        # "model" is the model itself (its forward or a hook): no later check builds it
        self.hung_roles = dict(hung_roles or {})
        # project functions that ended an earlier worker's process (os._exit, a segfault): not called again
        self.crashed_roles = dict(crashed_roles or {})
        self.root: Path = config.root
        self.seed = seed
        self.device = device
        self.budget = Budget(budget_seconds if budget_seconds is not None else config.budget_seconds)
        self._shared: dict[Hashable, Any] = {}
        self._shared_locks: dict[Hashable, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        self.notices: list[str] = []  # run-level facts a check should mention (e.g. a sample was used)

    # --- sharing -------------------------------------------------------------------------------
    def shared(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """Compute once per run and cache; an exception is cached too, so a broken input fails fast.

        Thread-safe: the engine may compute some analyses ahead on a background thread (CheckSpec.
        prefetch); a check asking for a key being computed there waits for it instead of redoing it."""
        if key not in self._shared:
            with self._locks_guard:
                lock = self._shared_locks.setdefault(key, threading.RLock())
            with lock:
                if key not in self._shared:
                    try:
                        self._shared[key] = ("ok", compute())
                    except Exception as exc:  # re-raised to every check that asks
                        self._shared[key] = ("err", exc)
        kind, value = self._shared[key]
        if kind == "err":
            raise value
        return value

    def prepare(self) -> None:
        """Load what every run needs and fail early with a ProjectError (exit 2) when it cannot."""
        if self.config.model_code:
            _ = self.code
            for role in PROJECT_ROLES:
                self.function(role)
        if self.config.engine == "dask":  # a missing extra is one message for the run, not one per check
            from ..io.engines.dask_engine import import_dask

            import_dask()
        _ = self.splits
        if not self.is_tensor and not self.config.logs_only:
            self._validate_columns()

    # --- data ----------------------------------------------------------------------------------
    @cached_property
    def raw_splits(self) -> dict[str, Any]:
        cfg = self.config
        if self.is_tensor:  # one row per item, holding its label (DESIGN §3b)
            return {name: self.tensor_frame(name) for name in self.tensor_splits}
        if cfg.logs_only:  # a training log alone: no rows (only the training checks run)
            return {}
        splits = {"train": read_table(cfg.train, "[data] train")}
        if cfg.valid is not None:
            splits["valid"] = read_table(cfg.valid, "[data] valid")
        if cfg.test is not None:
            splits["test"] = read_table(cfg.test, "[data] test")
        for name, df in splits.items():
            if cfg.target not in df.columns:
                cols = [str(c) for c in df.columns]
                shown = ", ".join(cols[:30]) + (f", ... ({len(cols)} columns)" if len(cols) > 30 else "")
                raise ProjectError(
                    f"{cfg.path}: [data] target = \"{cfg.target}\" is not a column of the {name} split "
                    f"({getattr(cfg, name)}).{did_you_mean(cfg.target, cols)}\nColumns: {shown}"
                )
        return splits

    @property
    def valid_is_holdout(self) -> bool:
        if self.is_tensor:
            return "held out" in self.tensor_split("valid").source
        return self.config.valid is None

    @cached_property
    def splits(self) -> dict[str, Any]:
        """train, valid (held out from train when not configured) and test when configured."""
        splits = dict(self.raw_splits)
        if "valid" not in splits and "train" in splits:
            splits["train"], splits["valid"] = self._holdout(splits["train"])
        return {k: splits[k] for k in ("train", "valid", "test") if k in splits}

    def _holdout(self, df):
        from sklearn.model_selection import train_test_split

        if len(df) < 5:
            raise ProjectError(f"{self.config.train}: only {len(df)} rows, too few to hold out a validation "
                               f"split. Add [data] valid or more rows.")
        y = df[self.config.target]
        stratify = None
        if self.task == "classification":
            # pandas 3's astype(str) keeps missing values missing, which train_test_split rejects
            keys = y.astype("string").fillna("<missing>")
            counts = keys.value_counts()
            if counts.min() >= 2 and len(counts) <= len(df) * HOLDOUT_FRACTION:
                stratify = keys.to_numpy(dtype=object)
        train, valid = train_test_split(df, test_size=HOLDOUT_FRACTION, random_state=self.seed,
                                        shuffle=True, stratify=stratify)
        if "mltriage_sample" not in df.attrs:  # read whole: the index is the file's row (issue 18's row tables)
            self.file_rows = {"train": train.index.to_numpy(), "valid": valid.index.to_numpy()}
        return train.reset_index(drop=True), valid.reset_index(drop=True)

    @property
    def train(self):
        return self.splits["train"]

    @property
    def valid(self):
        return self.splits["valid"]

    @property
    def test(self):
        return self.splits.get("test")

    @property
    def target(self) -> str:
        return TENSOR_TARGET if self.is_tensor else self.config.target

    def _validate_columns(self) -> None:
        cfg, cols = self.config, [str(c) for c in self.raw_splits["train"].columns]
        for key in ("features", "ignore", "text"):
            for name in getattr(cfg, key) or []:
                if name not in cols:
                    raise ProjectError(f"{cfg.path}: [data] {key} names '{name}', which is not a column of "
                                       f"{cfg.train}.{did_you_mean(name, cols)}")

    @cached_property
    def feature_columns(self) -> list[str]:
        cfg = self.config
        if self.is_tensor or cfg.logs_only:
            return []
        if cfg.features is not None:
            return list(cfg.features)
        skip = set(cfg.ignore) | {cfg.target}
        return [c for c in self.raw_splits["train"].columns if c not in skip]

    @cached_property
    def text_columns(self) -> list[str]:
        if self.config.text is not None:
            return list(self.config.text)
        import pandas as pd

        train = self.raw_splits["train"]
        dtypes = dict(zip(train.columns, train.dtypes))
        found = []
        for c in self.feature_columns:
            dtype = dtypes[c]
            # object columns (pandas 2) and the `str` dtype of pandas 3 both hold strings
            if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype) \
                    or pd.api.types.is_datetime64_any_dtype(dtype):
                continue
            col = train[c]
            sample = col.dropna().astype(str).head(2000)
            if len(sample) and sample.str.len().mean() >= TEXT_MIN_MEAN_LENGTH and sample.str.contains(" ").mean() > 0.5:
                found.append(c)
        return found

    @cached_property
    def numeric_columns(self) -> list[str]:
        import pandas as pd

        train = self.raw_splits["train"]
        dtypes = dict(zip(train.columns, train.dtypes))  # at once: train[c] costs 50 us a column
        return [c for c in self.feature_columns
                if pd.api.types.is_numeric_dtype(dtypes[c]) and not pd.api.types.is_bool_dtype(dtypes[c])]

    @cached_property
    def categorical_columns(self) -> list[str]:
        skip = set(self.numeric_columns) | set(self.text_columns)
        return [c for c in self.feature_columns if c not in skip]

    # --- the task -----------------------------------------------------------------------------
    @cached_property
    def inferred_task(self) -> str:
        """classification or regression from the training target alone."""
        import numpy as np
        import pandas as pd

        if self.config.classes is not None:
            return "classification"
        if self.is_tensor:
            return "regression" if self.target_kind == "value" else "classification"
        if self.config.logs_only:  # nothing to infer from: the log's metric names decide nothing here
            return "classification"
        y = self.raw_splits["train"][self.config.target].dropna()
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            return "classification"
        values = np.asarray(y, dtype=float)
        integral = np.all(np.isfinite(values)) and np.all(values == np.round(values))
        if integral and y.nunique() <= MAX_CLASSES_FOR_INT_TARGET:
            return "classification"
        return "regression"

    @property
    def task(self) -> str:
        return self.config.task or self.inferred_task

    @property
    def is_classification(self) -> bool:
        return self.task == "classification"

    @cached_property
    def classes(self) -> list[Any]:
        """Class labels in output-index order: `classes` from the project, else sorted train labels."""
        if not self.is_classification:
            return []
        if self.is_tensor:
            return self.tensor_classes()
        if self.config.logs_only:
            return list(self.config.classes or [])
        if self.config.classes is not None:
            return list(self.config.classes)
        values = self.train[self.target].dropna().unique().tolist()
        try:
            return sorted(values)
        except TypeError:
            return sorted(values, key=str)

    @property
    def metric(self) -> str:
        return self.config.metric or default_metric(self.task)

    @property
    def loss_name(self) -> str:
        return self.config.loss or default_loss(self.task)

    @property
    def n_outputs(self) -> int:
        """Width of the model's output: one per class for a per-class loss (and for a project's own loss
        on a classifier), else 1 (binary losses, regression)."""
        loss = loss_info(self.loss_name)
        if not self.is_classification or (loss is not None and not loss.per_class_outputs):
            return 1
        return len(self.classes)

    def labels(self, split: str):
        """The raw target column of a split."""
        if self.is_tensor and self.target_kind == "sequence":
            raise SkipCheck("sequence targets (one label per position): per-example label checks do not apply")
        return self.splits[split][self.target]

    def y(self, split: str):
        """Encoded targets: int64 class indices (-1 for labels outside `classes`) or float32 values."""
        if self.is_tensor:
            return self.shared(("RunContext.y", split), lambda: self.tensor_y(split))

        def compute():
            import numpy as np

            raw = self.labels(split)
            if not self.is_classification:
                import pandas as pd

                return np.array(pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float32), copy=True)
            return self.encode_labels(raw)

        return self.shared(("RunContext.y", split), compute)

    def encode_labels(self, values):
        """Class indices in `classes` order (int64, -1 for missing values and labels outside `classes`):
        the one label encoder, for targets and for a predictions file's labels alike."""
        import numpy as np
        import pandas as pd

        index = {self.label_key(c): i for i, c in enumerate(self.classes)}
        # Encode each distinct label once (vectorised over rows): a million rows take milliseconds.
        codes, uniques = pd.factorize(pd.Series(values), use_na_sentinel=True)
        lookup = np.array([index.get(self.label_key(v), -1) for v in uniques] + [-1], dtype=np.int64)
        return lookup[codes]  # code -1 (missing) picks the trailing -1

    @staticmethod
    def label_key(value: Any) -> str:
        """The normal form labels are compared on: TOML classes may be ints while CSV labels are ints or
        strings, and a float label 3.0 is the class 3."""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)

    def features_frame(self, split: str):
        return self.splits[split][self.feature_columns]

    def X(self, split: str):
        """The split as a float32 matrix: the project's featurize (fitted on train), else numeric columns.
        A tensor project's split is TensorRows instead: its items, indexable like the rows of a matrix."""
        if self.is_tensor:
            return self.tensor_rows(split)

        def compute():
            import numpy as np

            fit_df = self.features_frame("train")
            df = self.features_frame(split)
            featurize = self.function("featurize")
            if featurize is not None:
                out = call_user(self.config, f"featurize (on the {split} split)", featurize, fit_df, df)
                array = self._featurized_array(out, split, len(df))
                if split != "train":
                    width = int(self.X("train").shape[1])
                    if array.shape[1] != width:
                        raise ProjectError(
                            f"{self._featurize_name()} returned {array.shape[1]} columns for the {split} split but "
                            f"{width} for train. It must return the same columns for every split: fit the "
                            f"encoding on fit_df (the train features) and apply it to df.")
                return array
            if self.text_columns or self.categorical_columns:
                extra = self.text_columns + self.categorical_columns
                raise ProjectError(
                    f"{self.config.path}: columns {extra[:5]} are not numeric, so they need a [model] featurize "
                    f"function (or list them under [data] ignore).")
            # pandas 3 hands out read-only views (copy-on-write); torch warns on those and
            # project code may scale in place, so give every check a writeable array.
            return np.array(df[self.numeric_columns].to_numpy(dtype=np.float32), copy=True)

        return self.shared(("RunContext.X", split), compute)

    def _featurize_name(self) -> str:
        return f"[model] featurize = \"{self.config.featurize}\""

    def _featurized_array(self, out, split: str, rows: int):
        """featurize's output as a float32 (rows, n) matrix, or a ProjectError naming featurize and what it
        must return (DESIGN §3): strings, a generator or ragged rows are mistakes in the project's code."""
        import inspect

        import numpy as np

        expected = (f"It must return a 2-D array of floats (numpy, a DataFrame of numbers, a torch tensor or a "
                    f"scipy sparse matrix) with one row per row of df ({rows} for the {split} split).")
        name = self._featurize_name()
        if out is None:
            raise ProjectError(f"{name} returned None for the {split} split. {expected}")
        if isinstance(out, (str, bytes)) or inspect.isgenerator(out) or inspect.isasyncgen(out) or \
                (hasattr(out, "__next__") and not hasattr(out, "__len__")):
            raise ProjectError(f"{name} returned {type(out).__name__} for the {split} split. {expected}"
                               + (" A generator is read once; return np.asarray(list(...)) or np.stack(...)."
                                  if not isinstance(out, (str, bytes)) else ""))
        if hasattr(out, "toarray"):
            out = out.toarray()
        if hasattr(out, "detach"):
            out = out.detach().cpu().numpy()
        try:
            array = np.asarray(out, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            shown = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise ProjectError(f"{name} returned values that are not numbers for the {split} split ({shown}). "
                               f"{expected} Encode text and categories as numbers inside featurize.") from None
        if array.ndim != 2 or array.shape[0] != rows:
            raise ProjectError(f"{name} returned shape {array.shape} for {rows} rows of the {split} split. "
                               f"{expected}")
        return array

    # --- project code --------------------------------------------------------------------------
    @cached_property
    def code(self):
        if not self.config.model_code:
            return None
        return import_project_code(self.config)

    def function(self, role: str):
        """The project's function for build/featurize/train_step/predict, or None when not configured."""
        name = getattr(self.config, role, None)
        if not name or self.code is None:
            return None
        key = ("RunContext.function", role)
        if key not in self._shared:
            self._shared[key] = ("ok", resolve_function(self.config, self.code, role, name,
                                                             hung=self.hung_roles, crashed=self.crashed_roles))
        return self._shared[key][1]

    @property
    def has_model(self) -> bool:
        return self.config.has_model

    def build_model(self):
        """A fresh model from the project's build function, seeded so every build is the same."""
        build = self.function("lightning" if self.config.lightning else "build")
        if build is None:
            return None
        self._refuse_broken_model()
        self.seed_everything()
        if self.config.lightning:
            return call_user(self.config, f"{self.config.lightning}()", build)
        if accepts_no_arguments(build):  # build_model() of a tensor project (DESIGN §3b)
            return call_user(self.config, "build_model", build)
        n_inputs = self.example_size() if self.is_tensor else int(self.X("train").shape[1])
        return call_user(self.config, "build_model", build, n_inputs, self.n_outputs)

    def _refuse_broken_model(self) -> None:
        """A model whose own code (forward, a hook, an estimator's fit) hung or ended the process in an
        earlier check of this run is not run again: the check fails at once instead of waiting its limit."""
        from ..project.usercode import UserCodeError

        if "model" in self.hung_roles:
            raise UserCodeError("not run: the model's own code (its forward() or a hook) hung in an earlier "
                                "check and was stopped", self.hung_roles["model"], not_run=True)
        if "model" in self.crashed_roles:
            raise UserCodeError("not run: the model's own code (its forward() or a hook) ended the check "
                                "process in an earlier check", self.crashed_roles["model"], not_run=True)

    def first_model(self):
        """The model built once per run to look at (its kind, its summary): never trained or changed."""
        return self.shared(("RunContext.first_model",), self.build_model)

    def seed_everything(self) -> None:
        import random

        import numpy as np

        random.seed(self.seed)
        np.random.seed(self.seed)
        try:
            import torch

            torch.manual_seed(self.seed)
        except ImportError:
            pass

    @cached_property
    def model_kind(self) -> str | None:
        """'torch', 'sklearn' or None (no model configured). Builds one model to find out."""
        if not self.has_model:
            return None
        model = self.first_model()
        if hasattr(model, "fit") and (hasattr(model, "predict") or hasattr(model, "predict_proba")):
            return "sklearn"
        try:
            import torch

            if isinstance(model, torch.nn.Module):
                return "torch"
        except ImportError:
            pass
        return "unknown"

    # --- availability of inputs, for `needs` ---------------------------------------------------
    def missing(self, need: str) -> str | None:
        """None when the input is available, else what to add to mltriage.toml to get it."""
        cfg = self.config
        if need in ("data", "train", "valid"):
            return None
        if need == "test":
            if self.is_tensor:
                return None if "test" in self.tensor_splits else "a test split: make_dataset(\"test\")"
            return None if cfg.test else 'a test split: [data] test = "data/test.csv"'
        if need == "classification":
            return None if self.is_classification else "a classification task (this project is regression)"
        if need == "model":
            return None if self.has_model else ('model code: [model] code = "model.py" and '
                                                'build = "build_model"')
        if need == "gradients":  # per-layer gradient records: the user's monitored run, or a probe of the model
            from ..io.monitor_file import find_monitor_file

            if find_monitor_file(cfg.monitor, self.root)[0] is not None:
                return None
            need = "torch_model"
        if need == "torch_model":
            if not self.has_model:
                return 'a PyTorch model: [model] code = "model.py" and build = "build_model"'
            return None if self.model_kind == "torch" else "a PyTorch model (this check does not apply to " \
                                                         "scikit-learn estimators)"
        if need in ("train_step", "predict", "checkpoint"):
            return None if getattr(cfg, need) else f'[model] {need} = "..." in mltriage.toml'
        if need in ("training_log", "predictions", "previous_predictions"):
            return None if getattr(cfg, need) else f'[artifacts] {need} = "..." in mltriage.toml'
        if need == "slices":
            return None if cfg.slices else "[[slices]] tables (name, where, metric, min/max) in mltriage.toml"
        if need == "tensor":
            return None if self.is_tensor else ("a tensor project: [model] dataset = \"make_dataset\" "
                                                "(this check reads tensors from a Dataset)")
        if need in ("images", "tokens"):
            if not self.is_tensor:
                return f"a tensor project of {need}: [model] dataset = \"make_dataset\""
            return None if self.modality == need else f"{need} as inputs (this project's inputs are {self.modality})"
        if need == "text":
            return None if self.text_columns else "a free-text column (set [data] text = [\"...\"])"
        raise ValueError(f"unknown need {need!r}")

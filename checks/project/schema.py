"""The schema of `mltriage.toml` (DESIGN §3, contract) and the validators that turn each mistake in it into a
ProjectError naming the file, the key and what to do: the keys each table accepts and their types, a key
checked against them, a path resolved next to the project file, a value checked against its choices.
config.py loads the file with them (and re-exports every name here).
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any

PROJECT_FILE = "mltriage.toml"


class ProjectError(Exception):
    """The project cannot be checked. The message is shown to the user as is (exit code 2)."""


# --- schema ------------------------------------------------------------------------------------
# Each key: (python type(s) accepted, human description). Lists are checked element-wise.
_STR, _NUM, _INT, _BOOL = (str,), (int, float), (int,), (bool,)
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...] | str, str]]] = {
    "project": {"name": (_STR, "a string"), "task": (_STR, "a string"), "metric": (_STR, "a string")},
    "data": {
        "train": (_STR, "a path string"), "valid": (_STR, "a path string"),
        "test": (_STR, "a path string"), "target": (_STR, "a column name"), "unlabeled": (_STR, "a path string"),
        "features": ("list[str]", "a list of column names"),
        "ignore": ("list[str]", "a list of column names"),
        "text": ("list[str]", "a list of column names"),
        "classes": ("list", "a list of labels"),
        "images": (_STR, "a column name (the column of image file paths)"),
        "engine": (_STR, 'an engine name ("pandas", "duckdb", "dask" or "auto")'),
        "scheduler": (_STR, 'a Dask scheduler address ("tcp://host:8786")'),
    },
    "model": {
        "code": (_STR, "a file path or dotted module name"), "build": (_STR, "a function name"),
        "featurize": (_STR, "a function name"), "loss": (_STR, "a loss name or function name"),
        "optimizer": (_STR, "an optimizer name or function name"), "lr": (_NUM, "a number"),
        "batch_size": (_INT, "an integer"), "epochs": (_INT, "an integer"),
        "train_step": (_STR, "a function name"), "predict": (_STR, "a function name"),
        "checkpoint": (_STR, "a path string"),
        "dataset": (_STR, "a function name (make_dataset(split) -> torch Dataset)"),
        "collate": (_STR, "a function name (a DataLoader collate_fn)"),
        "lightning": (_STR, "a LightningModule class name"),
        "datamodule": (_STR, "a LightningDataModule class name"),
        "decode": (_STR, "a function name (decode(ids) -> str)"),
        "scheduler": (_STR, "a function name (make_scheduler(optimizer) -> lr scheduler)"),
    },
    "artifacts": {
        "training_log": (_STR, "a path string"), "predictions": (_STR, "a path string"),
        "previous_predictions": (_STR, "a path string"),
        "monitor": (_STR, "a path string (a monitor file or folder)"),
    },
    "budget": {"seconds": (_NUM, "a number of seconds")},
    "checks": {"skip": ("list[str]", "a list of check ids"),
               "max_status": ("table", 'a table of check id = status ("pass", "info", "warn" or "fail")')},
}
# The statuses [checks.max_status] may cap a check at (error and skipped are not verdicts to cap at).
MAX_STATUS_VALUES = ("pass", "info", "warn", "fail")
SLICE_SCHEMA = {"name": (_STR, "a string"), "where": (_STR, "a pandas expression string"),
                "metric": (_STR, "a metric name"), "min": (_NUM, "a number"),
                "max": (_NUM, "a number")}
TOP_LEVEL = tuple(SCHEMA) + ("slices",)


def closest(word: str, options: list[str] | tuple[str, ...]) -> str | None:
    match = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.5)
    return match[0] if match else None


def did_you_mean(word: str, options) -> str:
    guess = closest(word, options)
    return f" Did you mean '{guess}'?" if guess else ""


def _type_ok(value: Any, expected) -> bool:
    if expected == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if expected == "list":
        return isinstance(value, list)
    if expected == "table":
        return isinstance(value, dict)
    if isinstance(value, bool):  # bool is an int in Python; never accept it for numbers
        return bool in expected
    return isinstance(value, expected)


def _type_name(value: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _check_table(file: Path, where: str, table: Any, schema: dict) -> None:
    if not isinstance(table, dict):
        raise ProjectError(f"{file}: [{where}] must be a table (a [{where}] section), not {_type_name(table)}.")
    for key, value in table.items():
        if key not in schema:
            raise ProjectError(
                f"{file}: unknown key '{key}' in [{where}].{did_you_mean(key, list(schema))}\n"
                f"Valid keys in [{where}]: {', '.join(schema)}."
            )
        expected, description = schema[key]
        if isinstance(value, float) and not math.isfinite(value):
            raise ProjectError(f"{file}: [{where}] {key} = {value} is not a finite number.")
        if not _type_ok(value, expected):
            raise ProjectError(
                f"{file}: [{where}] {key} must be {description}, but it is {_type_name(value)} ({value!r})."
            )


def _resolve(root: Path, file: Path, key: str, value: str | None, must_exist: bool = True) -> Path | None:
    if value is None:
        return None
    if not value.strip():
        raise ProjectError(f"{file}: {key} is empty. Give a path (relative to the folder of {PROJECT_FILE}) "
                           f"or remove the key.")
    path = (root / value).expanduser()
    if must_exist and not path.exists():
        raise ProjectError(
            f"{file}: {key} = \"{value}\" points to {path.resolve()}, which does not exist.\n"
            f"Fix the path (it is relative to the folder of {PROJECT_FILE}) or remove the key."
        )
    if path.exists() and not path.is_file() and not path.is_dir():  # reading a FIFO would block forever
        raise ProjectError(f"{file}: {key} = \"{value}\" is not a regular file (a pipe or a device?). "
                           f"Point it at a file.")
    return path


def _choice(file: Path, key: str, value: str | None, options: tuple[str, ...]) -> str | None:
    if value is not None and value not in options:
        raise ProjectError(
            f"{file}: {key} = \"{value}\" is not one of: {', '.join(options)}.{did_you_mean(value, options)}"
        )
    return value

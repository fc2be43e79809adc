"""`mltriage init`: write a starter mltriage.toml by looking at the data."""

from __future__ import annotations

import os
from pathlib import Path

from .config import PROJECT_FILE, ProjectError, did_you_mean
from ..io.readers import read_table

TARGET_NAMES = ("label", "labels", "target", "y", "class", "category", "outcome", "sentiment", "digit")
ID_HINTS = ("id", "uuid", "index", "key")


def find_data_file(folder: Path) -> Path:
    """The training file when --data is not given: a file named like train.* here or in data/, else the
    only data file there. ProjectError listing the candidates when it is ambiguous or there is none."""
    from ..io.readers import SUPPORTED

    files = sorted(p for d in (folder, folder / "data") if d.is_dir() for p in d.iterdir()
                   if p.is_file() and p.suffix.lower() in SUPPORTED)
    named = [p for p in files if p.stem.lower() in ("train", "training", "train_data")]
    if len(named) == 1:
        return named[0]
    if len(files) == 1:
        return files[0]
    if not files:
        raise ProjectError(f"No data file in {folder} or {folder / 'data'}. Pass --data FILE "
                           f"({', '.join(SUPPORTED)}).")
    listing = ", ".join(str(p.relative_to(folder)) for p in files[:10])
    raise ProjectError(f"Several data files here ({listing}); pass the training one with --data FILE.")


def guess_target(df) -> list[str]:
    """Candidate target columns, best first: conventional names, then the last column."""
    lowered = {str(c).lower(): c for c in df.columns}
    found = [lowered[n] for n in TARGET_NAMES if n in lowered]
    last = df.columns[-1]
    if last not in found:
        found.append(last)
    return found


def looks_like_id(df, column) -> bool:
    name = str(column).lower()
    series = df[column]
    named = name in ID_HINTS or name.endswith("_id") or name.endswith("id") and len(name) <= 8
    return bool(named and series.nunique(dropna=True) >= 0.95 * len(series))


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()


def write_starter(data: Path, target: str | None = None, valid: str | None = None, test: str | None = None,
                  output: Path = Path(PROJECT_FILE)) -> Path:
    import pandas as pd

    output = Path(output)
    if output.is_dir():
        output = output / PROJECT_FILE
    if output.exists():
        raise ProjectError(f"{output.resolve()} already exists; mltriage init never overwrites it. "
                           f"Edit it, or pass --output to write somewhere else.")
    if not data.exists():
        raise ProjectError(f"--data {data}: no such file ({data.resolve()}).")
    for flag, value in (("--valid", valid), ("--test", test)):
        if value and not Path(value).exists():
            raise ProjectError(f"{flag} {value}: no such file ({Path(value).resolve()}).")
    df = read_table(data, "--data")
    columns = [str(c) for c in df.columns]
    candidates = guess_target(df)
    if target is None:
        target = str(candidates[0])
    elif target not in columns:
        raise ProjectError(f"--target {target}: not a column of {data}.{did_you_mean(target, columns)}\n"
                           f"Columns: {', '.join(columns[:30])}")
    y = df[target]
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    task = "regression" if numeric and y.nunique() > 50 else "classification"
    ignore = [c for c in columns if c != target and looks_like_id(df, c)]
    text = [c for c in columns if c != target and c not in ignore and df[c].dtype == object
            and df[c].dropna().astype(str).str.len().mean() >= 30]
    root = output.parent.resolve()
    text = starter_toml(name=root.name, task=task, train=_rel(data, root),
                        valid=_rel(Path(valid), root) if valid else None,
                        test=_rel(Path(test), root) if test else None,
                        target=target, other_targets=[str(c) for c in candidates[1:4]], ignore=ignore, text=text)
    from ..io.state import atomic_write_text

    # O_EXCL-style refusal above; the write itself is atomic.
    atomic_write_text(output, text)
    return output


def starter_toml(name: str, task: str, train: str, valid: str | None, test: str | None, target: str,
                 other_targets: list[str], ignore: list[str], text: list[str]) -> str:
    """The starter file. Every value taken from the data (file and column names) is written by tomlkit as
    a quoted TOML string, so a hostile column name stays a string: it can never close the value, start
    a section or add a key (`[model] code = ...` would make `check` run code the data chose)."""
    import tomlkit

    doc = tomlkit.document()
    doc.add(tomlkit.comment("Starter project file written by `mltriage init`. Review every line."))
    project = tomlkit.table()
    project.add("name", name)
    project.add("task", task)
    project.add("metric", "f1_macro" if task == "classification" else "rmse")
    doc.add("project", project)
    data = tomlkit.table()
    data.add("train", train)
    if valid:
        data.add("valid", valid)
    else:
        data.add(tomlkit.comment('valid = "data/valid.csv"   # absent: 20% of train is held out'))
    if test:
        data.add("test", test)
    data.add("target", target)
    if other_targets:
        # names from the data go into comments only through json.dumps: quoted, one line, no newline
        data["target"].comment("other candidates: " + ", ".join(_one_line(c) for c in other_targets))
    if ignore:
        data.add("ignore", ignore)
        data["ignore"].comment("look like row ids")
    if text:
        data.add("text", text)
    doc.add("data", data)
    doc.add(tomlkit.nl())
    doc.add(tomlkit.comment("[model]"))
    doc.add(tomlkit.comment('code = "model.py"          # build_model(n_inputs, n_outputs), featurize(fit_df, df), ...'))
    doc.add(tomlkit.comment('build = "build_model"'))
    doc.add(tomlkit.nl())
    budget = tomlkit.table()
    budget.add("seconds", 60)
    doc.add("budget", budget)
    return tomlkit.dumps(doc)


def _one_line(value: str) -> str:
    import json

    return json.dumps(str(value), ensure_ascii=True)

"""Project files and data files that are odd, not wrong-looking: one clear message (exit 2) naming the
file and the key, never a traceback or a hang; and data shapes no check can read are set aside, not fatal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mltriage.checks.io.readers import read_table
from mltriage.checks.project.config import ProjectError, load_project


def project(root: Path, toml: str, rows: int = 40) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame({"x": np.arange(rows, dtype=float), "y": [0, 1] * (rows // 2),
                       "note": ["a long enough review text with spaces in it"] * rows})
    df.to_csv(root / "train.csv", index=False)
    (root / "mltriage.toml").write_text(toml)
    return root


BASE = '[data]\ntrain = "train.csv"\ntarget = "y"\n'


def check(target, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(target), "--steps", "problem"],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def assert_clean_exit_2(result, *words):
    assert result.returncode == 2, result.stderr[-1500:]
    assert "Traceback" not in result.stderr and result.stderr.startswith("mltriage: ")
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.mark.parametrize("extra, words", [
    ('[model]\ncode = ""\nbuild = "b"\n', ["[model] code is empty"]),
    ('features = []\n', ["features = [] lists no column"]),
    ('features = ["x", "x"]\n', ["features lists 'x' more than once"]),
    ('text = ["y"]\n', ["target column 'y'", "text"]),
])
def test_project_file_mistakes_name_the_key(tmp_path, extra, words):
    toml = BASE + extra if not extra.startswith("[") else BASE + extra
    root = project(tmp_path / "p", toml)
    assert_clean_exit_2(check(root), *words)


def test_a_byte_order_mark_is_accepted(tmp_path):
    root = project(tmp_path / "p", "")
    (root / "mltriage.toml").write_bytes("\ufeff".encode() + BASE.encode())
    assert load_project(root).target == "y"


def test_a_deeply_nested_project_file_is_a_message(tmp_path):
    root = project(tmp_path / "p", BASE + "deep = " + "[" * 5000 + "]" * 5000 + "\n")
    assert_clean_exit_2(check(root), "too deeply")


def test_a_fifo_as_project_file_does_not_hang(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    os.mkfifo(root / "mltriage.toml")
    assert_clean_exit_2(check(root, timeout=30), "not a regular file")


def test_a_fifo_as_data_file_does_not_hang(tmp_path):
    root = project(tmp_path / "p", BASE.replace("train.csv", "pipe.csv"))
    os.mkfifo(root / "pipe.csv")
    assert_clean_exit_2(check(root, timeout=30), "[data] train", "not a regular file")


def test_the_csv_given_instead_of_the_project_says_so(tmp_path):
    root = project(tmp_path / "p", BASE)
    assert_clean_exit_2(check(root / "train.csv"), "is a data file, not a project file", "mltriage init")


@pytest.mark.parametrize("value", ["0", "-5", "inf", "nan", "lots"])
def test_an_unusable_read_limit_is_a_message(tmp_path, value):
    root = project(tmp_path / "p", BASE)
    assert_clean_exit_2(check(root, env={"MLTRIAGE_MAX_READ_MB": value}), "MLTRIAGE_MAX_READ_MB")


def test_clean_twin_of_the_read_limit_runs(tmp_path):
    root = project(tmp_path / "p", BASE)
    assert check(root, env={"MLTRIAGE_MAX_READ_MB": "512"}).returncode in (0, 1)


def test_nested_parquet_columns_are_set_aside(tmp_path):
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "tags": [[1, 2], [3], []], "meta": [{"a": 1}, {"a": 2}, {"a": 3}],
                       "y": [0, 1, 0]})
    df.to_parquet(tmp_path / "t.parquet")
    read = read_table(tmp_path / "t.parquet")
    assert list(read.columns) == ["x", "y"] and set(read.attrs["mltriage_dropped"]) == {"tags", "meta"}
    plain = read_table(_write(tmp_path / "plain.parquet", df[["x", "y"]]))
    assert "mltriage_dropped" not in plain.attrs


def test_structured_and_complex_npz_arrays_are_set_aside(tmp_path):
    rec = np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])
    np.savez(tmp_path / "d.npz", x=np.arange(3.0), z=np.array([1j, 2j, 3j]), rec=rec, y=np.array([0, 1, 0]))
    read = read_table(tmp_path / "d.npz")
    assert list(read.columns) == ["x", "y"] and set(read.attrs["mltriage_dropped"]) == {"z", "rec"}


def _write(path: Path, df) -> Path:
    df.to_parquet(path)
    return path


def test_load_project_raises_project_error_not_oserror_for_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "mltriage.toml")
    with pytest.raises(ProjectError):
        load_project(tmp_path)

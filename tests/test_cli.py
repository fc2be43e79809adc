"""End-to-end through the `mltriage` command: formats, exit codes 0/1/2, messages without tracebacks."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from helpers import write_project


def mltriage(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mltriage.tui.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def clean_frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    return pd.DataFrame({"a": a, "b": rng.normal(size=n), "label": np.where(a + rng.normal(0, .5, n) > 0, "p", "q")})


@pytest.fixture
def clean(tmp_path):
    return write_project(tmp_path / "clean", clean_frame(), valid_df=clean_frame(seed=1))


@pytest.fixture
def leaky(tmp_path):
    train = clean_frame()
    valid = pd.concat([clean_frame(seed=1).iloc[:150], train.iloc[:50]])
    return write_project(tmp_path / "leaky", train, valid_df=valid)


def test_help_lists_subcommands():
    r = mltriage("--help")
    assert r.returncode == 0 and all(c in r.stdout for c in ("check", "init", "report", "tour"))


def test_json_shape_and_exit_1_on_fail(leaky):
    r = mltriage("check", leaky, "--steps", "problem,sanity,data", "--format", "json")
    assert r.returncode == 1, r.stderr
    run = json.loads(r.stdout)
    assert set(run) >= {"mltriage", "project", "findings", "summary"}
    assert set(run["summary"]) == {"pass", "info", "warn", "fail", "error", "skipped"}
    overlap = next(f for f in run["findings"] if f["check"] == "data.split_overlap")
    assert overlap["status"] == "fail" and overlap["evidence"]["overlap"]["valid"]["rows"] == 50
    assert set(overlap) >= {"check", "step", "status", "title", "detail", "fix", "evidence", "seconds"}
    ids = [f["check"] for f in run["findings"]]
    assert len(ids) == len(set(ids))


def test_clean_exit_0_and_history_saved(clean):
    r = mltriage("check", clean, "--steps", "problem,sanity", "--format", "text")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Summary:" in r.stdout and max(len(line) for line in r.stdout.splitlines()) <= 120
    runs = list((clean / ".mltriage" / "runs").glob("*.json"))
    assert len(runs) == 1 and json.loads(runs[0].read_text())["project"] == "clean"


def test_fail_on_warn(tmp_path):
    train = clean_frame(400)
    train.loc[:30, "a"] = np.nan  # ~8% missing in one column: warn without a model
    root = write_project(tmp_path, train, valid_df=clean_frame(seed=2))
    assert mltriage("check", root, "--steps", "data").returncode == 0
    assert mltriage("check", root, "--steps", "data", "--fail-on", "warn").returncode == 1


def test_markdown_and_output_file(leaky, tmp_path):
    out = tmp_path / "report.md"
    r = mltriage("check", leaky, "--steps", "data", "--format", "markdown", "--output", out)
    assert r.returncode == 1 and r.stdout == ""
    text = out.read_text()
    assert text.startswith("# mltriage report") and "data.split_overlap" in text


def test_junit_one_testcase_per_check(leaky):
    r = mltriage("check", leaky, "--steps", "problem,data", "--format", "junit")
    root = ET.fromstring(r.stdout)
    cases = root.findall(".//testcase")
    names = [c.get("name") for c in cases]
    assert "data.split_overlap" in names and len(names) == len(set(names))
    overlap = next(c for c in cases if c.get("name") == "data.split_overlap")
    assert overlap.find("failure") is not None


def test_broken_project_file_exit_2_no_traceback(tmp_path):
    (tmp_path / "mltriage.toml").write_text("[data]\ntrain = 'x.csv'\ntagret = 'y'\n")
    r = mltriage("check", tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "unknown key 'tagret'" in r.stderr and "mltriage.toml" in r.stderr


def test_missing_target_exit_2(tmp_path):
    root = write_project(tmp_path, clean_frame(), target="lable")
    r = mltriage("check", root)
    assert r.returncode == 2 and "Did you mean 'label'?" in r.stderr and "Traceback" not in r.stderr


def test_usage_errors_exit_2(clean):
    r = mltriage("check", clean, "--steps", "dta")
    assert r.returncode == 2 and "Did you mean 'data'?" in r.stderr
    assert mltriage("check", clean, "--format", "yaml").returncode == 2
    assert mltriage("check", clean, "--budget", "-1").returncode == 2


def test_no_project_exit_2(tmp_path):
    r = mltriage("check", tmp_path / "nowhere")
    assert r.returncode == 2 and "mltriage init" in r.stderr


def test_init_writes_starter_and_refuses_overwrite(tmp_path):
    df = clean_frame()
    df.insert(0, "row_id", range(len(df)))
    df.to_csv(tmp_path / "train.csv", index=False)
    r = mltriage("init", "--data", "train.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "mltriage.toml").read_text()
    assert 'target = "label"' in text and 'ignore = ["row_id"]' in text and 'task = "classification"' in text
    before = (tmp_path / "mltriage.toml").read_text()
    r = mltriage("init", "--data", "train.csv", cwd=tmp_path)
    assert r.returncode == 2 and "never overwrites" in r.stderr
    assert (tmp_path / "mltriage.toml").read_text() == before
    assert mltriage("check", tmp_path, "--steps", "problem").returncode in (0, 1)


def test_init_unknown_target(tmp_path):
    clean_frame().to_csv(tmp_path / "train.csv", index=False)
    r = mltriage("init", "--data", "train.csv", "--target", "lbl", cwd=tmp_path)
    assert r.returncode == 2 and "Did you mean 'label'?" in r.stderr


def test_report_after_check(leaky):
    assert mltriage("report", leaky).returncode == 2  # nothing saved yet: a clear message
    mltriage("check", leaky, "--steps", "data")
    r = mltriage("report", leaky, "--format", "html")
    assert r.returncode == 0 and r.stdout.startswith("<!DOCTYPE html>") and "split_overlap" in r.stdout


def test_init_finds_the_training_file_itself(tmp_path):
    (tmp_path / "data").mkdir()
    clean_frame().to_csv(tmp_path / "data" / "train.csv", index=False)
    clean_frame(seed=3).to_csv(tmp_path / "data" / "valid.csv", index=False)
    r = mltriage("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'train = "data/train.csv"' in (tmp_path / "mltriage.toml").read_text()


def test_init_without_data_file_says_what_to_pass(tmp_path):
    r = mltriage("init", cwd=tmp_path)
    assert r.returncode == 2 and "--data FILE" in r.stderr

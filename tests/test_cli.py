"""End-to-end through the `mltriage` command: formats, exit codes 0/1/2, messages without tracebacks."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from pathlib import Path

from helpers import GOOD_TORCH_MODEL, write_project


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


# --- numbers, devices and outputs are checked before anything runs (issue 19) ----------------------

@pytest.mark.parametrize("option", ["--budget", "--check-timeout"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1"])
def test_seconds_must_be_positive_and_finite(clean, option, value):
    r = mltriage("check", clean, "--steps", "problem", f"{option}={value}")
    assert r.returncode == 2 and f"{option} must be a positive, finite number" in r.stderr
    assert "Traceback" not in r.stderr


def test_device_is_checked_before_running(clean):
    r = mltriage("check", clean, "--steps", "problem", "--device", "bogus")
    assert r.returncode == 2 and "--device 'bogus' is not a device" in r.stderr


def test_cuda_without_a_gpu_falls_back_to_cpu_with_one_message(clean):
    """Issue 14: --device cuda on a machine without CUDA says so once and runs on the CPU."""
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = mltriage("check", clean, "--device", "cuda", "--steps", "problem", "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    assert r.stderr.count("mltriage: ") == 1 and "--device cuda" in r.stderr and "--device cpu" in r.stderr
    findings = json.loads(r.stdout)["findings"]
    assert any(f["check"] == "problem.task_type" and f["status"] != "error" for f in findings)


def test_output_that_cannot_be_written_is_a_message(clean, tmp_path):
    r = mltriage("check", clean, "--steps", "problem", "--output", tmp_path)
    assert r.returncode == 2 and "is a folder" in r.stderr
    r = mltriage("check", clean, "--steps", "problem", "--output", "/dev/fd/97")
    assert r.returncode == 2 and "not open" in r.stderr
    assert "Traceback" not in r.stderr


def test_closed_pipe_and_full_disk_never_show_a_traceback(clean):
    cmd = [sys.executable, "-m", "mltriage.tui.cli", "check", str(clean), "--steps", "problem,data"]
    head = subprocess.run(" ".join(cmd) + " | head -1", shell=True, capture_output=True, text=True, timeout=120,
                          executable="/bin/bash")
    assert head.stdout.startswith("mltriage") and head.stderr == "", head.stderr
    through = subprocess.run(" ".join(cmd) + " --output /dev/stdout | head -1", shell=True, capture_output=True,
                             text=True, timeout=120, executable="/bin/bash")
    assert through.stdout.startswith("mltriage") and through.stderr == "", through.stderr
    if Path("/dev/full").exists():
        with open("/dev/full", "w") as full:
            r = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
        assert r.returncode == 2 and "No space left" in r.stderr and "Traceback" not in r.stderr


# --- exit codes and JUnit as DESIGN §4 says (issue 15 item 3) ---------------------------------------

RAISING_BUILD = "def build_model(n_inputs, n_outputs):\n    raise ValueError('no model today')\n"
HANGING_STEP = GOOD_TORCH_MODEL + "\n\ndef stuck_step(model, optimizer, loss_fn, xb, yb):\n    while True:\n        pass\n"


def _model_project(root, code, extra=""):
    return write_project(root, clean_frame(), valid_df=clean_frame(seed=1), model_code=code,
                         toml_extra="[model]\ncode = 'model.py'\nbuild = 'build_model'\n" + extra)


def test_an_error_finding_fails_the_run(tmp_path):
    root = _model_project(tmp_path / "p", RAISING_BUILD)
    r = mltriage("check", root, "--checks", "sanity.data_loads,sanity.model_builds", "--format", "json")
    statuses = {f["check"]: f["status"] for f in json.loads(r.stdout)["findings"]}
    assert statuses == {"sanity.data_loads": "pass", "sanity.model_builds": "error"}
    assert r.returncode == 1, r.stderr


def test_nothing_checked_is_exit_2(tmp_path):
    root = _model_project(tmp_path / "p", RAISING_BUILD)
    r = mltriage("check", root, "--checks", "sanity.model_builds")
    assert r.returncode == 2 and r.stderr.startswith("mltriage: nothing could be checked")
    assert "sanity.model_builds" in r.stderr and "Traceback" not in r.stderr


def test_a_run_where_every_check_skipped_is_exit_2_and_its_twin_is_not(tmp_path):
    """A CI gate that checked nothing must not pass: architecture checks on a project without a model."""
    import pandas as pd

    from helpers import write_project

    df = pd.DataFrame({"x": range(40), "label": [0, 1] * 20})
    write_project(tmp_path / "data_only", df, df.iloc[:10])
    r = mltriage("check", tmp_path / "data_only", "--steps", "architecture")
    assert r.returncode == 2 and r.stderr.startswith("mltriage: nothing was checked"), r.stderr
    assert "Traceback" not in r.stderr
    twin = mltriage("check", tmp_path / "data_only", "--steps", "problem")
    assert twin.returncode in (0, 1), twin.stderr


def test_a_hung_train_step_exits_1(tmp_path):
    # 10 s, not less: on a loaded box importing torch and building the model can take seconds, and the title
    # names the hung function only once the check has reached it
    root = _model_project(tmp_path / "p", HANGING_STEP, "train_step = 'stuck_step'\n")
    r = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--checks",
                        "sanity.data_loads,sanity.train_step", "--check-timeout", "10", "--format", "json"],
                       capture_output=True, text=True, timeout=600)
    found = {f["check"]: f for f in json.loads(r.stdout)["findings"]}
    assert found["sanity.train_step"]["status"] == "error" and "stuck_step" in found["sanity.train_step"]["title"]
    assert r.returncode == 1, r.stderr


def _statuses_at_or_above(run, fail_on):
    from mltriage.checks.findings import SEVERITY

    return sum(1 for f in run["findings"] if f["status"] != "error" and SEVERITY[f["status"]] >= SEVERITY[fail_on])


@pytest.mark.parametrize("fail_on", ["fail", "warn"])
def test_junit_failures_equal_findings_at_or_above_fail_on(leaky, tmp_path, fail_on):
    r = mltriage("check", leaky, "--steps", "problem,data", "--format", "json", "--output", tmp_path / "run.json")
    run = json.loads((tmp_path / "run.json").read_text())
    expected = _statuses_at_or_above(run, fail_on)
    assert expected > 0
    j = mltriage("check", leaky, "--steps", "problem,data", "--format", "junit", "--fail-on", fail_on)
    root = ET.fromstring(j.stdout)
    failures = root.findall(".//failure")
    assert len(failures) == expected
    assert j.returncode == r.returncode if fail_on == "fail" else j.returncode == 1
    overlap = next(c for c in root.findall(".//testcase") if c.get("name") == "data.split_overlap")
    body = overlap.find("failure").text
    assert "Fix:" in body and overlap.find("failure").get("type") == "fail"
    total = sum(int(s.get("failures")) for s in root.findall("testsuite"))
    assert total == expected


def test_junit_error_is_an_error_element(tmp_path):
    from mltriage.checks.io.report import to_junit

    run = {"project": "p", "findings": [
        {"check": "sanity.model_builds", "step": "sanity", "status": "error", "title": "build raised",
         "detail": "ValueError", "fix": "fix build", "evidence": {}, "seconds": 0.1},
        {"check": "data.drift", "step": "data", "status": "warn", "title": "drifted", "detail": "d", "fix": "f",
         "evidence": {}, "seconds": 0.1}]}
    strict = ET.fromstring(to_junit(run, fail_on="warn"))
    assert len(strict.findall(".//error")) == 1 and len(strict.findall(".//failure")) == 1
    assert "fix build" in strict.find(".//error").text
    lenient = ET.fromstring(to_junit(run))
    assert len(lenient.findall(".//error")) == 1 and not lenient.findall(".//failure")


# --- --checks and [checks] in mltriage.toml --------------------------------------------------------

def test_checks_option_runs_only_those(leaky):
    r = mltriage("check", leaky, "--checks", "data.split_overlap,problem.task_type", "--format", "json")
    ids = sorted(f["check"] for f in json.loads(r.stdout)["findings"])
    assert ids == ["data.split_overlap", "problem.task_type"] and r.returncode == 1


def test_checks_option_unknown_id_exit_2(leaky):
    r = mltriage("check", leaky, "--checks", "data.split_overlapp")
    assert r.returncode == 2 and "unknown check id 'data.split_overlapp'" in r.stderr
    assert "Did you mean 'data.split_overlap'?" in r.stderr


def test_project_file_skips_and_caps_checks(leaky):
    toml = leaky / "mltriage.toml"
    toml.write_text(toml.read_text() + '\n[checks]\nskip = ["data.label_order"]\n'
                                       '[checks.max_status]\n"data.split_overlap" = "warn"\n')
    r = mltriage("check", leaky, "--checks", "data.split_overlap,data.label_order", "--format", "json")
    found = {f["check"]: f for f in json.loads(r.stdout)["findings"]}
    assert found["data.label_order"]["status"] == "skipped"
    assert found["data.label_order"]["title"] == "skipped in mltriage.toml"
    capped = found["data.split_overlap"]
    assert capped["status"] == "warn" and "capped at warn" in capped["title"]
    assert capped["evidence"]["capped_from"] == "fail" and "[checks.max_status]" in capped["detail"]
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("section", ['[checks]\nskip = ["data.nope"]\n', '[checks.max_status]\n"data.drift" = "low"\n'])
def test_project_file_checks_section_mistakes_exit_2(leaky, section):
    toml = leaky / "mltriage.toml"
    toml.write_text(toml.read_text() + "\n" + section)
    r = mltriage("check", leaky, "--steps", "problem")
    assert r.returncode == 2 and "mltriage.toml" in r.stderr and "Traceback" not in r.stderr
    assert ("data.nope" in r.stderr) or ("'low'" in r.stderr)

"""The check engine: findings round-trip, errors and skips are findings, runs stream and survive hangs."""

import json
import threading
import time

import pandas as pd
import pytest

from helpers import ENGINE_PLUGIN, install_plugin, write_project
from mltriage.checks.findings import Finding, PlotSpec, Series, summarize
from mltriage.checks.project.config import ProjectError, load_project
from mltriage.checks.engine.registry import CATALOG_IDS, STEPS, checks_for
from mltriage.checks.engine.supervisor import RunOptions, run_checks



@pytest.fixture
def plugin_project(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "zz_plugin", ENGINE_PLUGIN)
    df = pd.DataFrame({"a": range(20), "label": [0, 1] * 10})
    write_project(tmp_path / "proj", df, valid_df=df)
    return load_project(tmp_path / "proj")


def test_finding_json_round_trip():
    plot = PlotSpec(kind="line", title="loss", series=[Series("train", [1, 2], [0.5, float("nan")])], x_log=True)
    f = Finding(status="warn", title="t", detail="d", fix="f", evidence={"n": 3}, plots=[plot],
                check="data.x", step="data", seconds=0.25)
    data = json.loads(json.dumps(f.to_dict()))
    back = Finding.from_dict(data)
    assert back.to_dict() == f.to_dict()
    assert data["plots"][0]["series"][0]["y"] == [0.5, None]  # NaN is not valid JSON


def test_bad_status_and_plot_kind_rejected():
    with pytest.raises(ValueError):
        Finding(status="ok", title="x")
    with pytest.raises(ValueError):
        PlotSpec(kind="pie", title="x")


def test_catalog_order_and_steps():
    specs = checks_for(["data", "problem"])
    order = [CATALOG_IDS.index(s.id) for s in specs if s.id in CATALOG_IDS]
    assert order == sorted(order)
    assert {s.step for s in specs} <= {"data", "problem"}
    assert len(CATALOG_IDS) == len(set(CATALOG_IDS)) and STEPS[0] == "problem"


def test_in_process_errors_skips_and_needs(plugin_project):
    opts = RunOptions(checks=["sanity.zz_ok", "sanity.zz_raises", "sanity.zz_skip", "sanity.zz_needs_test"],
                      isolate=False)
    result = run_checks(plugin_project, opts)
    by_id = {f.check: f for f in result.findings}
    assert by_id["sanity.zz_ok"].status == "pass" and by_id["sanity.zz_ok"].step == "sanity"
    assert by_id["sanity.zz_raises"].status == "error"
    assert "boom inside the check" in by_id["sanity.zz_raises"].detail  # traceback kept in detail
    assert by_id["sanity.zz_skip"].status == "skipped" and "needs something else" in by_id["sanity.zz_skip"].title
    assert by_id["sanity.zz_needs_test"].status == "skipped"
    assert "[data] test" in by_id["sanity.zz_needs_test"].detail


def test_worker_kills_hang_and_survives_crash(plugin_project):
    streamed = []
    t0 = time.monotonic()
    result = run_checks(plugin_project,
                        RunOptions(checks=["sanity.zz_ok", "sanity.zz_hang", "sanity.zz_crash", "sanity.zz_after"]),
                        on_finding=streamed.append)
    elapsed = time.monotonic() - t0
    by_id = {f.check: f for f in result.findings}
    assert [f.check for f in streamed] == ["sanity.zz_ok", "sanity.zz_hang", "sanity.zz_crash", "sanity.zz_after"]
    assert by_id["sanity.zz_hang"].status == "error" and "timed out after 2 s" in by_id["sanity.zz_hang"].title
    assert by_id["sanity.zz_crash"].status == "error" and "exit code 3" in by_id["sanity.zz_crash"].title
    assert by_id["sanity.zz_after"].status == "pass"
    assert elapsed < 20
    assert summarize(result.findings)["error"] == 2


def test_cancel_stops_quickly(plugin_project):
    cancel = threading.Event()
    started = threading.Event()
    box = {}

    def run():
        box["result"] = run_checks(plugin_project, RunOptions(checks=["sanity.zz_hang"], check_timeout=60),
                                   on_start=lambda cid: started.set(), cancel=cancel)

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(15)
    t0 = time.monotonic()
    cancel.set()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - t0 < 1.5
    assert box["result"].cancelled and box["result"].findings == []


def test_project_error_in_worker_is_raised(tmp_path):
    df = pd.DataFrame({"a": range(10), "label": [0, 1] * 5})
    write_project(tmp_path, df, target="nope")
    with pytest.raises(ProjectError, match="not a column"):
        run_checks(load_project(tmp_path), RunOptions(steps=["problem"]))


def test_project_code_print_does_not_reach_stdout(tmp_path, capfd):
    df = pd.DataFrame({"a": [float(i) for i in range(20)], "label": [0, 1] * 10})
    code = "print('NOISE FROM PROJECT')\n\ndef build(n_inputs, n_outputs):\n    return None\n"
    write_project(tmp_path, df, toml_extra="[model]\ncode = 'model.py'\nbuild = 'build'", model_code=code)
    run_checks(load_project(tmp_path), RunOptions(steps=["problem"]))
    out, err = capfd.readouterr()
    assert "NOISE FROM PROJECT" not in out + err


def test_hang_in_project_code_is_located_and_not_called_again(tmp_path):
    df = pd.DataFrame({"a": [float(i) for i in range(40)], "label": [0, 1] * 20})
    code = ("import time\n\n\ndef wait_forever():\n    while True:\n        time.sleep(0.05)\n\n\n"
            "def build_model(n_inputs, n_outputs):\n    wait_forever()\n")
    write_project(tmp_path, df, valid_df=df, model_code=code,
                  toml_extra="[model]\ncode = 'model.py'\nbuild = 'build_model'")
    # Counts, not wall time, show that later checks fail fast: exactly one check waits out its limit.
    result = run_checks(load_project(tmp_path), RunOptions(steps=["sanity", "architecture"], check_timeout=10))
    errors = [f for f in result.findings if f.status == "error"]
    timed_out = [f for f in errors if "timed out" in f.title]
    assert len(timed_out) == 1, [f.title for f in errors]
    assert "inside the project's build_model()" in timed_out[0].title
    assert "in wait_forever" in timed_out[0].detail and "model.py" in timed_out[0].detail
    assert len(errors) >= 3  # the later model checks fail fast instead of hanging in turn


def test_custom_classification_loss_gets_class_indices(tmp_path):
    import numpy as np

    from helpers import context_for
    from mltriage.checks.analyses.modeling import fit_torch, labelled_rows

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "label": ["x", "y", "z"] * 20})
    code = ("import torch.nn as nn\n\ndef build(n_inputs, n_outputs):\n    return nn.Linear(n_inputs, n_outputs)\n\n"
            "def smoothed():\n    return nn.CrossEntropyLoss(label_smoothing=0.1)\n")
    write_project(tmp_path, df, valid_df=df, model_code=code,
                  toml_extra="[model]\ncode = 'model.py'\nbuild = 'build'\nloss = 'smoothed'\nepochs = 2")
    ctx = context_for(tmp_path)
    history = fit_torch(ctx, ctx.build_model(), *labelled_rows(ctx, "train"))
    assert ctx.n_outputs == 3 and history.epochs_done == 2 and not history.stopped


# --- featurize must return a 2-D float array with the same columns for every split (issue 19) ------

FEATURIZERS = {
    "strings": ("def featurize(fit_df, df):\n    return [['word ' + str(v)] for v in df['a']]\n", "not numbers"),
    "generator": ("def featurize(fit_df, df):\n    return (row for row in df.to_numpy())\n", "returned generator"),
    "widths": ("def featurize(fit_df, df):\n    import numpy as np\n"
               "    return np.ones((len(df), 3 if len(df) == len(fit_df) else 2))\n", "same columns for every split"),
    "none": ("def featurize(fit_df, df):\n    pass\n", "returned None"),
}


@pytest.mark.parametrize("kind", sorted(FEATURIZERS))
def test_featurize_output_is_validated_with_one_message(tmp_path, kind):
    from helpers import context_for
    from mltriage.checks.engine.run import run_one
    from mltriage.checks.engine.registry import all_checks

    code, expected = FEATURIZERS[kind]
    train = pd.DataFrame({"a": [float(i) for i in range(30)], "label": [0, 1] * 15})
    valid = train.iloc[:10]
    write_project(tmp_path, train, valid_df=valid, model_code=code + "\n\ndef build(n_inputs, n_outputs):\n    pass\n",
                  toml_extra="[model]\ncode = 'model.py'\nbuild = 'build'\nfeaturize = 'featurize'")
    ctx = context_for(tmp_path)
    with pytest.raises(ProjectError) as caught:
        ctx.X("train"), ctx.X("valid")
    message = str(caught.value)
    assert '[model] featurize = "featurize"' in message and expected in message
    assert "2-D array of floats" in message or "same columns" in message
    if kind != "widths":  # model_builds reads the train matrix only
        finding = run_one(all_checks()["sanity.model_builds"], ctx)
        assert finding.status == "error" and "featurize" in finding.title and "Traceback" not in finding.title

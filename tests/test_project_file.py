"""Every mistake in mltriage.toml gets a precise message (issue 2 item 2)."""

import pandas as pd
import pytest

from helpers import context_for, write_project
from mltriage.checks.project.config import ProjectError, load_project


@pytest.fixture
def frame():
    return pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "b": [0, 1, 0, 1, 0, 1], "label": list("xyxyxy")})


def write(tmp_path, text):
    (tmp_path / "mltriage.toml").write_text(text)
    return tmp_path


def error_for(path) -> str:
    with pytest.raises(ProjectError) as info:
        load_project(path)
    return str(info.value)


def test_missing_project_file_names_path_and_init(tmp_path):
    message = error_for(tmp_path)
    assert str(tmp_path / "mltriage.toml") in message
    assert "mltriage init" in message


def test_empty_file(tmp_path):
    assert "is empty" in error_for(write(tmp_path, "  \n"))


def test_not_toml_points_at_line(tmp_path):
    message = error_for(write(tmp_path, "[data\ntrain = 1"))
    assert "not valid TOML" in message and "line 1" in message


def test_unknown_key_suggests_closest(tmp_path, frame):
    write_project(tmp_path, frame)
    text = (tmp_path / "mltriage.toml").read_text().replace("target", "tagret")
    message = error_for(write(tmp_path, text))
    assert "unknown key 'tagret' in [data]" in message and "Did you mean 'target'?" in message


def test_unknown_section_suggests_closest(tmp_path, frame):
    write_project(tmp_path, frame, toml_extra="[modle]\ncode = 'x.py'")
    message = error_for(tmp_path)
    assert "unknown section [modle]" in message and "Did you mean 'model'?" in message


def test_wrong_type(tmp_path, frame):
    write_project(tmp_path, frame, toml_extra="[model]\ncode = 'model.py'\nbuild = 'b'\nlr = 'fast'",
                  model_code="def b(n_inputs, n_outputs):\n    return None\n")
    message = error_for(tmp_path)
    assert "[model] lr must be a number" in message and "'fast'" in message


def test_bool_is_not_a_number(tmp_path, frame):
    write_project(tmp_path, frame, toml_extra="[budget]\nseconds = true")
    assert "[budget] seconds must be a number of seconds" in error_for(tmp_path)


def test_missing_required_key(tmp_path):
    message = error_for(write(tmp_path, '[data]\ntrain = "x.csv"\n'))
    assert "[data] target is required" in message


def test_file_not_found_shows_resolved_path(tmp_path):
    message = error_for(write(tmp_path, '[data]\ntrain = "data/nope.csv"\ntarget = "y"\n'))
    assert str((tmp_path / "data" / "nope.csv").resolve()) in message and "does not exist" in message


def test_bad_choice_suggests(tmp_path, frame):
    write_project(tmp_path, frame, toml_extra="[project]\nmetric = 'f1-macro'")
    message = error_for(tmp_path)
    assert "is not one of" in message and "Did you mean 'f1_macro'?" in message


def test_metric_must_fit_task(tmp_path, frame):
    write_project(tmp_path, frame, toml_extra="[project]\ntask = 'classification'\nmetric = 'rmse'")
    assert "does not fit task" in error_for(tmp_path)


def test_target_column_missing_lists_columns_and_suggests(tmp_path, frame):
    write_project(tmp_path, frame, target="lable")
    with pytest.raises(ProjectError) as info:
        context_for(tmp_path)
    message = str(info.value)
    assert "target = \"lable\" is not a column" in message
    assert "Did you mean 'label'?" in message and "Columns: a, b, label" in message


def test_feature_column_missing(tmp_path, frame):
    write_project(tmp_path, frame, features=["a", "c"])
    with pytest.raises(ProjectError, match="names 'c', which is not a column"):
        context_for(tmp_path)


def test_code_import_error_shows_user_frames_only(tmp_path, frame):
    code = "import math\n\n\ndef helper():\n    return 1 / 0\n\n\nhelper()\n\ndef build(n_inputs, n_outputs):\n    pass\n"
    write_project(tmp_path, frame, toml_extra="[model]\ncode = 'model.py'\nbuild = 'build'", model_code=code)
    with pytest.raises(ProjectError) as info:
        context_for(tmp_path)
    message = str(info.value)
    assert "failed to import (ZeroDivisionError" in message
    assert "model.py\", line 5, in helper" in message
    assert "importlib" not in message and "mltriage" not in message.split("Traceback")[1]


def test_code_syntax_error(tmp_path, frame):
    write_project(tmp_path, frame, toml_extra="[model]\ncode = 'model.py'\nbuild = 'build'",
                  model_code="def build(n_inputs, n_outputs)\n    pass\n")
    with pytest.raises(ProjectError, match="SyntaxError"):
        context_for(tmp_path)


def test_function_missing_suggests_and_shows_signature(tmp_path, frame):
    write_project(tmp_path, frame, toml_extra="[model]\ncode = 'model.py'\nbuild = 'build_model'",
                  model_code="def build_modle(n_inputs, n_outputs):\n    pass\n")
    with pytest.raises(ProjectError) as info:
        context_for(tmp_path)
    message = str(info.value)
    assert "build = \"build_model\" is not defined" in message and "Did you mean 'build_modle'?" in message
    assert "build_model(n_inputs: int, n_outputs: int)" in message


def test_function_wrong_signature(tmp_path, frame):
    write_project(tmp_path, frame,
                  toml_extra="[model]\ncode = 'model.py'\nbuild = 'build'\ntrain_step = 'step'",
                  model_code="def build(n_inputs, n_outputs):\n    pass\n\ndef step(model, xb, yb):\n    pass\n")
    with pytest.raises(ProjectError) as info:
        context_for(tmp_path)
    message = str(info.value)
    assert "step(model, xb, yb)" in message and "wrong signature" in message
    assert "train_step(model, optimizer, loss_fn, xb, yb)" in message


def test_slices_need_threshold(tmp_path, frame):
    write_project(tmp_path, frame, toml_extra="[[slices]]\nname = 's'\nwhere = 'a > 1'")
    assert "needs a threshold" in error_for(tmp_path)


def test_valid_project_loads_typed(tmp_path, frame):
    write_project(tmp_path, frame, toml_extra="[project]\nmetric = 'f1_macro'\n[budget]\nseconds = 5",
                  classes=["x", "y"])
    cfg = load_project(tmp_path / "mltriage.toml")
    assert cfg.name == tmp_path.name and cfg.metric == "f1_macro" and cfg.budget_seconds == 5.0
    assert cfg.classes == ["x", "y"] and cfg.train.is_absolute()


def test_non_finite_numbers_rejected(tmp_path, frame):
    write_project(tmp_path, frame, toml_extra="[budget]\nseconds = nan")
    assert "not a finite number" in error_for(tmp_path)

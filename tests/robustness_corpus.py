"""A corpus of bad inputs: each case writes a project into a folder and says what must happen.

Used by tests/test_robustness.py and benchmarks/robustness.py. Every case must end with exit code 0, 1
or 2, a message or findings, and never a Python traceback or a hang.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

GOOD_TOML = '[data]\ntrain = "train.csv"\ntarget = "label"\n'


def _frame(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "label": rng.integers(0, 2, n)})


def _project(root: Path, toml: str = GOOD_TOML, train: str | bytes | pd.DataFrame | None = None,
             files: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mltriage.toml").write_text(textwrap.dedent(toml))
    if train is None:
        train = _frame()
    if isinstance(train, pd.DataFrame):
        train.to_csv(root / "train.csv", index=False)
    elif isinstance(train, bytes):
        (root / "train.csv").write_bytes(train)
    else:
        (root / "train.csv").write_text(train)
    for name, content in (files or {}).items():
        path = root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content))
    return root


MODEL_TOML = GOOD_TOML + '[model]\ncode = "model.py"\nbuild = "build_model"\n[budget]\nseconds = 5\n'
TORCH_OK = '''
import torch.nn as nn
def build_model(n_inputs, n_outputs):
    return nn.Sequential(nn.Linear(n_inputs, 8), nn.ReLU(), nn.Linear(8, n_outputs))
'''


def case_missing_file(root):
    root.mkdir(parents=True, exist_ok=True)
    return root, {2}


def case_empty_toml(root):
    return _project(root, toml=""), {2}


def case_not_toml(root):
    return _project(root, toml="[data\ntrain = "), {2}


def case_misspelt_key(root):
    return _project(root, toml='[data]\ntrain = "train.csv"\ntaget = "label"\n'), {2}


def case_wrong_type(root):
    return _project(root, toml=GOOD_TOML + "[budget]\nseconds = 'lots'\n"), {2}


def case_missing_path(root):
    return _project(root, toml='[data]\ntrain = "nope.csv"\ntarget = "label"\n'), {2}


def case_missing_target(root):
    return _project(root, toml='[data]\ntrain = "train.csv"\ntarget = "lable"\n'), {2}


def case_classes_mismatch(root):
    return _project(root, toml=GOOD_TOML.replace('target = "label"', 'target = "label"\nclasses = ["x", "y"]')), {0, 1}


def case_bad_slice(root):
    toml = GOOD_TOML + "[[slices]]\nname = 'broken'\nwhere = 'a >>> 1'\nmetric = 'accuracy'\nmin = 0.5\n"
    return _project(root, toml=toml), {0, 1}


def case_empty_data(root):
    return _project(root, train=""), {2}


def case_header_only(root):
    return _project(root, train="a,b,label\n"), {2}


def case_ragged(root):
    return _project(root, train="a,b,label\n1,2,0\n3,4,1,9,9\n"), {2}


def case_wrong_delimiter(root):
    return _project(root, train="a;b;label\n1;2;0\n3;4;1\n"), {2}


def case_non_utf8(root):
    return _project(root, train=b"a,label\n1,caf\xe9\n2,x\n"), {2}


def case_all_nan_column(root):
    df = _frame()
    df["b"] = np.nan
    return _project(root, train=df), {0, 1}


def case_inf_values(root):
    df = _frame()
    df.loc[:5, "a"] = np.inf
    return _project(root, train=df), {0, 1}


def case_single_class(root):
    df = _frame()
    df["label"] = 1
    return _project(root, train=df), {0, 1}


def case_single_row(root):
    return _project(root, train=_frame(1)), {0, 1, 2}


def case_many_columns(root):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(50, 10_000)).astype(np.float32), columns=[f"c{i}" for i in range(10_000)])
    df["label"] = rng.integers(0, 2, 50)
    return _project(root, train=df), {0, 1}


def case_truncated_parquet(root):
    import io

    buffer = io.BytesIO()
    _frame().to_parquet(buffer)
    data = buffer.getvalue()
    toml = '[data]\ntrain = "train.parquet"\ntarget = "label"\n'
    root = _project(root, toml=toml, files={"train.parquet": data[: len(data) // 2]})
    return root, {2}


def case_pickled_npz(root):
    import io

    buffer = io.BytesIO()
    np.savez(buffer, a=np.array([{"x": 1}, None], dtype=object), label=np.array([0, 1]))
    toml = '[data]\ntrain = "train.npz"\ntarget = "label"\n'
    return _project(root, toml=toml, files={"train.npz": buffer.getvalue()}), {2}


def case_code_import_error(root):
    return _project(root, toml=MODEL_TOML, files={"model.py": "import not_a_module_anywhere\n"}), {2}


def case_code_syntax_error(root):
    return _project(root, toml=MODEL_TOML, files={"model.py": "def build_model(:\n"}), {2}


def case_build_wrong_signature(root):
    return _project(root, toml=MODEL_TOML, files={"model.py": "def build_model(a, b, c):\n    return None\n"}), {2}


def case_build_raises(root):
    code = "def build_model(n_inputs, n_outputs):\n    raise ValueError('no model today')\n"
    return _project(root, toml=MODEL_TOML, files={"model.py": code}), {0, 1}


def case_build_wrong_type(root):
    code = "def build_model(n_inputs, n_outputs):\n    return 'a string'\n"
    return _project(root, toml=MODEL_TOML, files={"model.py": code}), {0, 1}


def case_forward_raises(root):
    code = TORCH_OK.replace("nn.Linear(n_inputs, 8)", "nn.Linear(n_inputs + 3, 8)")
    return _project(root, toml=MODEL_TOML, files={"model.py": code}), {0, 1}


def case_build_hangs(root):
    code = "import time\ndef build_model(n_inputs, n_outputs):\n    while True:\n        time.sleep(0.1)\n"
    return _project(root, toml=MODEL_TOML, files={"model.py": code}), {0, 1}


def case_predictions_wrong_rows(root):
    toml = GOOD_TOML + '[artifacts]\npredictions = "preds.csv"\n'
    preds = "prediction,prob_0,prob_1\n0,0.9,0.1\n1,0.2,0.8\n"
    return _project(root, toml=toml, files={"preds.csv": preds}), {0, 1}


def case_truncated_log(root):
    toml = GOOD_TOML + '[artifacts]\ntraining_log = "log.csv"\n'
    return _project(root, toml=toml, files={"log.csv": "epoch,loss,val_loss\n0,1.0,1.1\n1,0.9,"}), {0, 1}


STEP_TOML = MODEL_TOML.replace('build = "build_model"', 'build = "build_model"\ntrain_step = "step"')


def _with_step(body: str) -> str:
    return TORCH_OK + "\n\ndef step(model, optimizer, loss_fn, xb, yb):\n" + textwrap.indent(textwrap.dedent(body), "    ")


def case_train_step_returns_nothing(root):
    code = _with_step("optimizer.zero_grad()\nloss_fn(model(xb), yb).backward()\noptimizer.step()\n")
    return _project(root, toml=STEP_TOML, files={"model.py": code}), {0, 1}


def case_train_step_returns_nan(root):
    code = _with_step("optimizer.zero_grad()\nloss_fn(model(xb), yb).backward()\noptimizer.step()\nreturn float('nan')\n")
    return _project(root, toml=STEP_TOML, files={"model.py": code}), {0, 1}


def case_train_step_returns_tensor_with_grad(root):
    code = _with_step("optimizer.zero_grad()\nloss = loss_fn(model(xb), yb)\nloss.backward()\noptimizer.step()\n"
                      "return loss\n")
    return _project(root, toml=STEP_TOML, files={"model.py": code}), {0, 1}


def case_build_allocates_too_much(root):
    code = "import numpy as np\ndef build_model(n_inputs, n_outputs):\n    return np.ones(10**12)\n"
    return _project(root, toml=MODEL_TOML, files={"model.py": code}), {0, 1}


def case_predictions_not_probabilities(root):
    toml = GOOD_TOML + '[data]\n'.replace('[data]\n', '') + '[artifacts]\npredictions = "preds.csv"\n'
    n = 12  # the held-out valid split of 60 rows
    rows = "\n".join(f"{i % 2},0.9,0.9" for i in range(n))
    return _project(root, toml=toml, files={"preds.csv": "prediction,prob_0,prob_1\n" + rows + "\n"}), {0, 1}


# --- issue 19: processes and hangs, project code that ends the worker, featurize output, [checks] ----

FORWARD_HOOK_HANGS = TORCH_OK + """
import time

def _stall(module, inputs, output):
    while True:
        time.sleep(0.05)

_build = build_model

def build_model(n_inputs, n_outputs):
    model = _build(n_inputs, n_outputs)
    model[0].register_forward_hook(_stall)
    return model
"""


def case_forward_hook_hangs(root):
    return _project(root, toml=MODEL_TOML, files={"model.py": FORWARD_HOOK_HANGS}), {1}


def case_build_exits_the_process(root):
    code = "import os\ndef build_model(n_inputs, n_outputs):\n    os._exit(9)\n"
    return _project(root, toml=MODEL_TOML, files={"model.py": code}), {1}


def case_build_segfaults(root):
    code = "import ctypes\ndef build_model(n_inputs, n_outputs):\n    ctypes.string_at(0)\n"
    return _project(root, toml=MODEL_TOML, files={"model.py": code}), {1}


def case_import_exits_the_process(root):
    return _project(root, toml=MODEL_TOML, files={"model.py": "import os\nos._exit(4)\n"}), {2}


def case_import_hangs(root):
    code = "import time\nwhile True:\n    time.sleep(0.05)\n"
    return _project(root, toml=MODEL_TOML, files={"model.py": code}), {2}


def case_train_step_hangs(root):
    return _project(root, toml=STEP_TOML, files={"model.py": _with_step("while True:\n    pass\n")}), {1}


FEATURIZE_TOML = MODEL_TOML.replace('build = "build_model"', 'build = "build_model"\nfeaturize = "featurize"')


def case_featurize_returns_strings(root):
    code = TORCH_OK + "\ndef featurize(fit_df, df):\n    return [['word'] * 2 for _ in range(len(df))]\n"
    return _project(root, toml=FEATURIZE_TOML, files={"model.py": code}), {1}


def case_featurize_returns_a_generator(root):
    code = TORCH_OK + "\ndef featurize(fit_df, df):\n    return (r for r in df.to_numpy())\n"
    return _project(root, toml=FEATURIZE_TOML, files={"model.py": code}), {1}


def case_featurize_widths_differ(root):
    code = TORCH_OK + ("\nimport numpy as np\ndef featurize(fit_df, df):\n"
                       "    return np.ones((len(df), 4 if len(df) == len(fit_df) else 3), dtype='float32')\n")
    return _project(root, toml=FEATURIZE_TOML, files={"model.py": code}), {1}


def case_checks_skip_unknown_id(root):
    return _project(root, toml=GOOD_TOML + '[checks]\nskip = ["data.label_ordr"]\n'), {2}


def case_checks_max_status_bad_value(root):
    return _project(root, toml=GOOD_TOML + '[checks.max_status]\n"data.drift" = "quiet"\n'), {2}


def case_slice_where_runs_a_command(root):
    toml = GOOD_TOML + ("[[slices]]\nname = 'hostile'\nwhere = \"__import__('os').system('touch PWNED')\"\n"
                        "metric = 'accuracy'\nmin = 0.5\n")
    return _project(root, toml=toml), {0, 1, 2}


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

# A file a case's input tries to create: if it exists after the run, input was executed as code.
CANARY = "PWNED"


# Command lines that must be refused before anything runs (exit 2, one message) or end cleanly: each
# is (make the project, extra arguments of `mltriage check`, allowed exit codes).
def _cuda_case_allowed() -> set[int]:
    try:
        import torch

        return {0, 1}  # no GPU: falls back to the CPU with a message (issue 14)
    except ImportError:
        return {2}


CLI_CASES = {
    "budget_nan": (lambda r: _project(r), ["--budget=nan"], {2}),
    "budget_inf": (lambda r: _project(r), ["--budget=inf"], {2}),
    "budget_zero": (lambda r: _project(r), ["--budget=0"], {2}),
    "check_timeout_negative": (lambda r: _project(r), ["--check-timeout=-1"], {2}),
    "check_timeout_nan": (lambda r: _project(r, toml=MODEL_TOML, files={"model.py": FORWARD_HOOK_HANGS}),
                          ["--check-timeout=nan"], {2}),
    "device_bogus": (lambda r: _project(r), ["--device", "bogus"], {2}),
    "device_cuda": (lambda r: _project(r), ["--device", "cuda", "--steps", "problem"], _cuda_case_allowed()),
    "output_is_a_folder": (lambda r: _project(r), ["--output", "."], {2}),
    "output_fd_not_open": (lambda r: _project(r), ["--output", "/dev/fd/97"], {2}),
    "output_full_disk": (lambda r: _project(r), ["--output", "/dev/full"], {2}),
    "checks_unknown_id": (lambda r: _project(r), ["--checks", "data.nope"], {2}),
    "checks_and_steps_disagree": (lambda r: _project(r), ["--checks", "data.drift", "--steps", "problem"], {2}),
}

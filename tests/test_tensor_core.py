"""The inputs model of tensor projects (DESIGN §3b): project files, splits from make_dataset / image folders /
image columns / LightningDataModules, the calling convention, and the training, metrics and error steps
running on them end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mltriage.checks.engine.context import RunContext  # noqa: E402
from mltriage.checks.engine.inputs import (ImageFolderDataset, TensorRows, content_hash, feed,  # noqa: E402
                                           input_tensors, modality_of)
from mltriage.checks.project.config import ProjectError, load_project  # noqa: E402

DIGITS_CODE = '''
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset
from sklearn.datasets import load_digits


class Digits(Dataset):
    def __init__(self, split):
        d = load_digits()
        idx = np.random.default_rng(0).permutation(len(d.target))
        parts = {"train": idx[:900], "valid": idx[900:1200], "test": idx[1200:1500]}
        if split not in SPLITS:
            raise KeyError(split)
        self.X = torch.tensor(d.images[parts[split]] / 16.0, dtype=torch.float32).unsqueeze(1)
        self.y = torch.tensor(d.target[parts[split]])

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i], int(self.y[i])


def make_dataset(split):
    return Digits(split)


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 64, 10))


def sgd(params, lr):
    sgd.called = True
    return torch.optim.SGD(params, lr=lr)
'''

TOML = '''
[project]
metric = "accuracy"
[model]
code = "train.py"
dataset = "make_dataset"
build = "build_model"
lr = 0.003
batch_size = 64
epochs = 3
{extra}
[budget]
seconds = 30
'''


def _digits_project(root, splits=("train", "valid", "test"), extra=""):
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(f"SPLITS = {tuple(splits)!r}\n" + DIGITS_CODE)
    (root / "mltriage.toml").write_text(TOML.format(extra=extra))
    return root


def _run_json(project, *args):
    r = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(project), "--format", "json", *args],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode in (0, 1), r.stderr
    return {f["check"]: f for f in json.loads(r.stdout)["findings"]}


# --- project files --------------------------------------------------------------------------------

def test_a_dataset_project_needs_no_train_table_or_target(tmp_path):
    cfg = load_project(_digits_project(tmp_path / "p"))
    assert cfg.is_tensor and cfg.dataset == "make_dataset" and cfg.target == ""


@pytest.mark.parametrize("model, message", [
    ('dataset = "a"\ndatamodule = "b"', "both dataset and datamodule"),
    ('build = "a"\nlightning = "b"', "both build and lightning"),
    ('dataset = "a"\nfeaturize = "b"', "featurize does not apply"),
])
def test_contradictory_tensor_keys_are_one_message(tmp_path, model, message):
    (tmp_path / "train.py").write_text("")
    (tmp_path / "mltriage.toml").write_text(f'[model]\ncode = "train.py"\n{model}\n')
    with pytest.raises(ProjectError, match=message):
        load_project(tmp_path)


def test_a_folder_that_is_not_an_image_folder_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "mltriage.toml").write_text('[data]\ntrain = "data"\ntarget = "y"\n')
    with pytest.raises(ProjectError, match="not an image folder"):
        load_project(tmp_path)


def _image_folder(root, per_class=6):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "valid"):
        for name in ("cat", "ant", "bee"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_an_image_folder_reads_like_torchvision_imagefolder(tmp_path):
    _image_folder(tmp_path)
    ds = ImageFolderDataset(tmp_path / "train")
    assert ds.classes == ["ant", "bee", "cat"] and len(ds) == 18 and ds.targets[:6] == [0] * 6
    x, y = ds[7]
    assert x.shape == (3, 8, 8) and x.dtype == torch.float32 and 0 <= float(x.min()) <= float(x.max()) <= 1 and y == 1
    (tmp_path / "mltriage.toml").write_text('[data]\ntrain = "train"\nvalid = "valid"\n')
    ctx = RunContext(load_project(tmp_path))
    assert ctx.is_tensor and ctx.modality == "images" and ctx.classes == ["ant", "bee", "cat"]
    assert list(ctx.y("valid")[:6]) == [0] * 6 and ctx.labels("valid").iloc[0] == "ant"


def test_a_table_of_image_paths_is_a_tensor_split_with_metadata(tmp_path):
    import pandas as pd
    from PIL import Image

    rows = []
    for i in range(12):
        Image.fromarray(np.full((6, 6), i * 20, dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows.append({"file": f"{i}.png", "label": "odd" if i % 2 else "even", "scanner": "ab"[i % 3 == 0]})
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "mltriage.toml").write_text('[data]\ntrain = "train.csv"\ntarget = "label"\nimages = "file"\n')
    ctx = RunContext(load_project(tmp_path))
    s = ctx.tensor_split("train")
    x, y = s.item(0)
    assert x.shape == (3, 6, 6) and ctx.classes == ["even", "odd"] and y in (0, 1)
    frame, numeric, categorical = ctx.tensor_slice_frame("valid")
    assert "meta:scanner" in categorical and "brightness" in numeric and len(frame) == len(ctx.tensor_split("valid"))


def test_make_dataset_without_valid_holds_out_a_stratified_fifth(tmp_path):
    ctx = RunContext(load_project(_digits_project(tmp_path / "p", splits=("train",))))
    ctx.prepare()
    assert len(ctx.tensor_split("train")) == 720 and len(ctx.tensor_split("valid")) == 180
    assert ctx.valid_is_holdout and ctx.missing("test")
    counts = np.bincount(ctx.y("valid"), minlength=10)
    assert counts.min() >= 15  # stratified: every digit is there


def test_make_dataset_that_raises_is_one_message_naming_it(tmp_path):
    root = _digits_project(tmp_path / "p")
    (root / "train.py").write_text("def make_dataset(split):\n    raise RuntimeError('no disk')\n"
                                   "def build_model():\n    return None\n")
    r = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(root)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and 'make_dataset' in r.stderr and "no disk" in r.stderr
    assert "Traceback (most recent call last)" not in r.stderr


def test_items_that_are_not_pairs_are_named(tmp_path):
    root = _digits_project(tmp_path / "p")
    code = (root / "train.py").read_text().replace("return self.X[i], int(self.y[i])", "return self.X[i]")
    (root / "train.py").write_text(code)
    ctx = RunContext(load_project(root))
    with pytest.raises(ProjectError, match=r"make_dataset.*pair \(x, y\)"):
        ctx.tensor_split("train")


# --- the calling convention -------------------------------------------------------------------------

def test_models_are_fed_tensors_tuples_and_dicts():
    class Two(torch.nn.Module):
        def forward(self, a, b=None, input_ids=None):
            return a if input_ids is None else input_ids

    m = Two()
    t = torch.ones(2, 3)
    assert feed(m, t) is t and feed(m, (t, t)) is t and feed(m, {"a": t, "input_ids": t * 2}).sum() == 12
    assert [n for n, _ in input_tensors({"input_ids": t, "mask": t, "n": 3})] == ["input_ids", "mask"]
    assert modality_of(torch.zeros(3, 8, 8)) == "images" and modality_of(torch.zeros(7, dtype=torch.long)) == "tokens"
    assert modality_of({"input_ids": torch.zeros(4, dtype=torch.long)}) == "tokens"
    assert modality_of(torch.zeros(5)) == "tensor"


def test_content_hash_sees_values_dtype_and_shape():
    a = torch.arange(6.0)
    assert content_hash(a) == content_hash(a.clone())
    assert content_hash(a) != content_hash(a.reshape(2, 3)) != content_hash(a.double())
    assert content_hash(torch.zeros(3, dtype=torch.bfloat16)) != content_hash(torch.ones(3, dtype=torch.bfloat16))


def test_tensor_rows_index_like_matrix_rows(tmp_path):
    ctx = RunContext(load_project(_digits_project(tmp_path / "p")))
    rows = ctx.X("train")
    assert isinstance(rows, TensorRows) and len(rows) == 900
    sub = rows[np.array([5, 1, 7])][1:]
    xb, yb = sub.batch(np.arange(2))
    assert xb.shape == (2, 1, 8, 8) and yb.tolist() == [int(ctx.tensor_split("train").item(1)[1]),
                                                      int(ctx.tensor_split("train").item(7)[1])]


# --- the steps on a tensor project, end to end ----------------------------------------------------------

def test_problem_training_metrics_and_errors_run_on_a_dataset_project(tmp_path):
    found = _run_json(_digits_project(tmp_path / "p"), "--steps", "problem,training,metrics,errors")
    broken = {c: f["title"] for c, f in found.items() if f["status"] == "error"}
    assert not broken, broken
    for cid in ("problem.class_balance", "problem.baseline", "training.divergence", "metrics.summary",
                "metrics.vs_baseline", "metrics.split_consistency", "errors.confident_mistakes"):
        assert found[cid]["status"] not in ("skipped", "error"), (cid, found[cid]["title"])
    # slices are never raw pixel ranges: label or input statistics only
    assert "x0" not in json.dumps(found["errors.weak_slices"]["evidence"])


def test_table_only_data_checks_say_why_they_skip(tmp_path):
    found = _run_json(_digits_project(tmp_path / "p"), "--checks", "data.outliers,data.id_columns,problem.class_balance")
    for cid in ("data.outliers", "data.id_columns"):
        assert found[cid]["status"] == "skipped" and "table columns" in found[cid]["title"]


def test_a_project_function_named_like_a_builtin_optimizer_is_used(tmp_path):
    from mltriage.checks.analyses.modeling import make_optimizer, optimizer_description

    ctx = RunContext(load_project(_digits_project(tmp_path / "p", extra='optimizer = "sgd"')))
    model = ctx.build_model()
    opt = make_optimizer(ctx, model.parameters())
    assert getattr(ctx.code.sgd, "called", False) and opt.defaults["momentum"] == 0
    assert optimizer_description(ctx) == "the project's sgd(params, lr)"


def test_sgd_says_its_momentum(tmp_path):
    from mltriage.checks.analyses.modeling import make_optimizer, optimizer_description

    root = _digits_project(tmp_path / "p", extra='optimizer = "sgd"')
    (root / "train.py").write_text((root / "train.py").read_text().replace("def sgd(", "def other_sgd("))
    ctx = RunContext(load_project(root))
    assert make_optimizer(ctx, ctx.build_model().parameters()).defaults["momentum"] == 0.9
    assert optimizer_description(ctx) == "sgd (momentum 0.9)"


LIGHTNING_CODE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import lightning as L
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits


class LitModel(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return {"optimizer": torch.optim.Adam(self.parameters(), lr=1e-2)}


class DigitsDataModule(L.LightningDataModule):
    def setup(self, stage=None):
        d = load_digits()
        X = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
        y = torch.tensor(d.target)
        self.train_ds, self.val_ds = TensorDataset(X[:1200], y[:1200]), TensorDataset(X[1200:], y[1200:])

    def train_dataloader(self):
        return DataLoader(self.train_ds, batch_size=64, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_ds, batch_size=256)
'''


def test_a_lightning_module_and_datamodule_train_without_a_trainer(tmp_path):
    pytest.importorskip("lightning")
    (tmp_path / "lit.py").write_text(LIGHTNING_CODE)
    (tmp_path / "mltriage.toml").write_text(textwrap.dedent('''
        [model]
        code = "lit.py"
        lightning = "LitModel"
        datamodule = "DigitsDataModule"
        epochs = 3
        [budget]
        seconds = 20
        '''))
    ctx = RunContext(load_project(tmp_path))
    assert len(ctx.tensor_split("train")) == 1200 and "test" not in ctx.tensor_splits  # no test_dataloader
    found = _run_json(tmp_path, "--steps", "training,metrics")
    assert found["training.divergence"]["status"] == "pass"
    assert found["metrics.vs_baseline"]["status"] == "pass", found["metrics.vs_baseline"]["title"]

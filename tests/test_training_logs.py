"""Training-log readers (checks/io/logs.py) on files in each supported format, and the curve checks on them.

The curves are real: a small PyTorch model is trained once per module on noisy data with too much
capacity, so its validation loss turns up (overfitting) while the training loss keeps falling.
TensorBoard files are written with the real writer (torch.utils.tensorboard.SummaryWriter). PyTorch
Lightning, Keras and Hugging Face transformers are not installed here, so their files are written by
hand in the exact layout those libraries produce (column names, row interleaving, log_history entries).
"""

from __future__ import annotations

import json
import math

import pytest

from helpers import context_for, run_check, write_project


@pytest.fixture(scope="module")
def real_run():
    """Per-step and per-epoch curves of a real training run that overfits after a few epochs."""
    import numpy as np
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 20)).astype(np.float32)
    y = ((X[:, 0] + 0.7 * rng.normal(size=160)) > 0).astype(np.int64)   # weak signal, noisy labels
    Xt, yt, Xv, yv = map(torch.as_tensor, (X[:80], y[:80], X[80:], y[80:]))
    model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    steps, epochs = [], []
    step = 0
    for epoch in range(30):
        model.train()
        batch_losses = []
        for i in range(0, 80, 16):
            opt.zero_grad()
            loss = loss_fn(model(Xt[i:i + 16]), yt[i:i + 16])
            loss.backward()
            opt.step()
            batch_losses.append(loss.item())
            steps.append({"epoch": epoch, "step": step, "loss": loss.item()})
            step += 1
        model.eval()
        with torch.no_grad():
            out = model(Xv)
            val_loss = float(loss_fn(out, yv))
            val_acc = float((out.argmax(1) == yv).float().mean())
            train_acc = float((model(Xt).argmax(1) == yt).float().mean())
        epochs.append({"epoch": epoch, "step": step - 1, "train_loss": sum(batch_losses) / len(batch_losses),
                       "val_loss": val_loss, "val_acc": val_acc, "train_acc": train_acc})
    best = min(range(len(epochs)), key=lambda e: epochs[e]["val_loss"])
    assert epochs[-1]["val_loss"] > 1.3 * epochs[best]["val_loss"], "the run must really overfit"
    assert best >= 4, "and improve for a few epochs first"
    return {"steps": steps, "epochs": epochs, "best": best}


def write_lightning_csv(path, run):
    """CSVLogger layout: step rows (train_loss_step), then per epoch a validation row and a train-epoch row."""
    import pandas as pd

    rows = []
    for e in run["epochs"]:
        rows += [{"epoch": s["epoch"], "step": s["step"], "train_loss_step": s["loss"]}
                 for s in run["steps"] if s["epoch"] == e["epoch"] and s["step"] % 2 == 0]
        rows.append({"epoch": e["epoch"], "step": e["step"], "val_loss": e["val_loss"], "val_acc": e["val_acc"]})
        rows.append({"epoch": e["epoch"], "step": e["step"], "train_loss_epoch": e["train_loss"]})
    cols = ["epoch", "step", "train_loss_epoch", "train_loss_step", "val_acc", "val_loss"]
    pd.DataFrame(rows, columns=cols).to_csv(path, index=False)


def write_keras_csv(path, run):
    """keras.callbacks.CSVLogger: 'epoch' then the logs' keys sorted, one row per epoch (0-based)."""
    lines = ["epoch,accuracy,loss,val_accuracy,val_loss"]
    lines += [f"{e['epoch']},{e['train_acc']},{e['train_loss']},{e['val_acc']},{e['val_loss']}" for e in run["epochs"]]
    path.write_text("\n".join(lines) + "\n")


def write_hf_state(path, run):
    """transformers Trainer's trainer_state.json: loss every logging step, eval_* per epoch, a summary last."""
    per_epoch = len(run["steps"]) // len(run["epochs"])
    history = []
    for s in run["steps"]:
        if (s["step"] + 1) % 2 == 0:
            history.append({"epoch": round((s["step"] + 1) / per_epoch, 2), "grad_norm": 1.0,
                            "learning_rate": 3e-3, "loss": s["loss"], "step": s["step"] + 1})
    for e in run["epochs"]:
        history.append({"epoch": float(e["epoch"] + 1), "eval_accuracy": e["val_acc"], "eval_loss": e["val_loss"],
                        "eval_runtime": 0.01, "eval_samples_per_second": 8000.0, "eval_steps_per_second": 100.0,
                        "step": e["step"] + 1})
    history.sort(key=lambda r: (r["step"], "eval_loss" in r))
    history.append({"epoch": float(len(run["epochs"])), "step": len(run["steps"]), "total_flos": 1.0,
                    "train_loss": 0.3, "train_runtime": 2.0, "train_samples_per_second": 1.0,
                    "train_steps_per_second": 1.0})
    path.write_text(json.dumps({"best_metric": None, "epoch": float(len(run["epochs"])),
                                "global_step": len(run["steps"]), "log_history": history}, indent=2))


def write_tensorboard(folder, run):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(folder))
    for s in run["steps"]:
        writer.add_scalar("train/loss", s["loss"], s["step"])
    for e in run["epochs"]:
        writer.add_scalar("val/loss", e["val_loss"], e["step"])
        writer.add_scalar("val/accuracy", e["val_acc"], e["step"])
    writer.close()


def write_tensorboard_keras_layout(folder, run):
    """Keras' TensorBoard callback layout: train/ and validation/ runs with epoch_* tags at step = epoch."""
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    for sub, loss_key, acc_key in (("train", "train_loss", "train_acc"), ("validation", "val_loss", "val_acc")):
        writer = SummaryWriter(log_dir=str(folder / sub))
        for e in run["epochs"]:
            writer.add_scalar("epoch_loss", e[loss_key], e["epoch"])
            writer.add_scalar("epoch_accuracy", e[acc_key], e["epoch"])
        writer.close()


def write_jsonl(path, run):
    rows = [{"step": s["step"], "epoch": s["epoch"], "loss": s["loss"]} for s in run["steps"]]
    rows += [{"step": e["step"], "epoch": e["epoch"], "valid_loss": e["val_loss"], "valid_accuracy": e["val_acc"]}
             for e in run["epochs"]]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def write_plain_csv(path, run):
    lines = ["epoch,train_loss,val_loss,val_acc"]
    lines += [f"{e['epoch'] + 1},{e['train_loss']},{e['val_loss']},{e['val_acc']}" for e in run["epochs"]]
    path.write_text("\n".join(lines) + "\n")


FORMATS = {
    "lightning": ("metrics.csv", write_lightning_csv, "lightning_csv"),
    "keras": ("training.log.csv", write_keras_csv, "keras_csv"),
    "huggingface": ("trainer_state.json", write_hf_state, "huggingface_trainer_state"),
    "tensorboard": ("tb_run", write_tensorboard, "tensorboard"),
    "tensorboard_keras": ("tb_keras", write_tensorboard_keras_layout, "tensorboard"),
    "jsonl": ("log.jsonl", write_jsonl, "jsonl"),
    "csv": ("history.csv", write_plain_csv, "csv"),
}


def _write(tmp_path, fmt, run):
    name, writer, _ = FORMATS[fmt]
    path = tmp_path / name
    if "tensorboard" in fmt:
        path.mkdir()
    writer(path, run)
    return path


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_reads_each_format(tmp_path, real_run, fmt):
    from mltriage.checks.io.logs import read_training_log

    curves = read_training_log(_write(tmp_path, fmt, real_run))
    assert curves.source_format == FORMATS[fmt][2]
    assert curves.has("train_loss") and curves.has("valid_loss"), curves.mapped
    valid = [v for v in curves.valid_loss if math.isfinite(v)]
    expected = [e["val_loss"] for e in real_run["epochs"]]
    assert len(valid) == len(expected)
    assert valid == pytest.approx(expected, rel=1e-5)
    assert curves.metric_name == "accuracy" and curves.has("valid_metric")
    assert curves.metric_higher_is_better
    if fmt in ("lightning", "huggingface", "tensorboard", "jsonl"):
        assert len(curves.step_loss) >= len(real_run["steps"]) // 2
    # the per-epoch training loss follows the real one (means of the logged steps where only steps exist)
    train = [v for v in curves.train_loss if math.isfinite(v)]
    assert train[-1] < train[0]


def test_huggingface_summary_entry_is_not_a_curve_point(tmp_path, real_run):
    from mltriage.checks.io.logs import read_training_log

    curves = read_training_log(_write(tmp_path, "huggingface", real_run))
    assert curves.index_name == "epoch" and curves.index[-1] == len(real_run["epochs"])
    assert "train_runtime" not in curves.columns


def _log_project(tmp_path, log_path, extra=""):
    import pandas as pd

    train = pd.DataFrame({"x": [0.1, 0.2, 0.3, 0.4] * 5, "label": [0, 1] * 10})
    return write_project(tmp_path, train, train, toml_extra=f'[artifacts]\ntraining_log = "{log_path}"\n{extra}')


@pytest.mark.parametrize("fmt", ["lightning", "keras", "huggingface", "tensorboard_keras"])
def test_overfitting_found_in_real_logs(tmp_path, real_run, fmt):
    path = _write(tmp_path, fmt, real_run)
    ctx = context_for(_log_project(tmp_path, path.name))
    found = run_check(ctx, "training.overfitting")
    assert found.status in ("warn", "fail"), found.title
    assert found.evidence["best_epoch"] == pytest.approx(real_run["best"] + (1 if fmt == "huggingface" else 0))
    assert FORMATS[fmt][2] in found.evidence["source"]
    stop = run_check(ctx, "training.early_stopping")
    assert stop.status == "warn" and stop.evidence["suggested_patience"] >= 1
    assert run_check(ctx, "training.divergence").status == "pass"


def test_healthy_log_is_quiet(tmp_path, real_run):
    """The same run cut at its best epoch (what early stopping would have kept) raises nothing."""
    cut = {"steps": [s for s in real_run["steps"] if s["epoch"] <= real_run["best"]],
           "epochs": real_run["epochs"][:real_run["best"] + 1], "best": real_run["best"]}
    path = _write(tmp_path, "lightning", cut)
    ctx = context_for(_log_project(tmp_path, path.name))
    for cid in ("training.overfitting", "training.divergence", "training.oscillation", "training.plateau",
                "training.early_stopping"):
        found = run_check(ctx, cid)
        assert found.status in ("pass", "info"), (cid, found.title, found.detail)


def test_unmapped_columns_are_named(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss,foo_score,bar\n1,0.9,3,4\n2,0.8,3,4\n3,0.7,3,5\n")
    ctx = context_for(_log_project(tmp_path, "log.csv"))
    found = run_check(ctx, "training.overfitting")
    assert found.status == "skipped"
    assert "foo_score" in found.detail and "bar" in found.detail
    from mltriage.checks.io.logs import read_training_log

    assert set(read_training_log(path).unmapped) == {"foo_score", "bar"}


def test_log_without_any_curve_is_a_clear_error(tmp_path):
    from mltriage.checks.io.logs import TrainingLogError, read_training_log

    path = tmp_path / "odd.csv"
    path.write_text("epoch,foo,bar\n1,2,3\n")
    with pytest.raises(TrainingLogError, match=r"odd\.csv.*foo, bar"):
        read_training_log(path)


@pytest.mark.parametrize("content, match", [
    ("{not json", r"broken\.json: not valid JSON"),
    ('{"a": 1}', r"broken\.json: a JSON training log must be"),
])
def test_bad_json_names_the_file(tmp_path, content, match):
    from mltriage.checks.io.logs import TrainingLogError, read_training_log

    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(TrainingLogError, match=match):
        read_training_log(path)


def test_missing_and_empty_logs(tmp_path):
    from mltriage.checks.io.logs import TrainingLogError, read_training_log

    with pytest.raises(TrainingLogError, match="does not exist"):
        read_training_log(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TrainingLogError, match="empty"):
        read_training_log(tmp_path / "empty.csv")
    (tmp_path / "run").mkdir()
    with pytest.raises(TrainingLogError, match="no TensorBoard event files"):
        read_training_log(tmp_path / "run")


def test_bad_log_becomes_an_error_finding_naming_the_file(tmp_path):
    (tmp_path / "log.jsonl").write_text('{"epoch": 1, "loss": 0.5}\nnot json\n')
    ctx = context_for(_log_project(tmp_path, "log.jsonl"))
    found = run_check(ctx, "training.divergence")
    assert found.status == "error"
    assert "log.jsonl" in found.detail and "line 2" in found.detail


def test_column_names_map_to_roles():
    from mltriage.checks.io.logs import classify_column

    assert classify_column("val_loss") == ("loss", "valid", "")
    assert classify_column("train_loss_epoch") == ("loss", "train", "epoch")
    assert classify_column("eval_loss") == ("loss", "valid", "")
    assert classify_column("loss") == ("loss", "train", "")
    assert classify_column("val_acc") == ("accuracy", "valid", "")
    assert classify_column("validation/epoch_accuracy") == ("accuracy", "valid", "")
    assert classify_column("Loss/train") == ("loss", "train", "")
    assert classify_column("learning_rate") is None

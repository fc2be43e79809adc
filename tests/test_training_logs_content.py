"""Training logs as users name them (issue 16, item 5): told by content, not extension; run folders of
Lightning and Hugging Face; regular text logs; one message for an unreadable log; NaN losses in a log;
the row trainer.validate() appends to a Lightning metrics.csv. Each planted case has a clean twin."""

from __future__ import annotations

import json
import math
import os

import pytest
from helpers import context_for, run_check, write_project

CURVE_CHECKS = ("training.divergence", "training.oscillation", "training.plateau", "training.overfitting",
                "training.underfitting", "training.early_stopping")


def _project(tmp_path, log_name):
    import pandas as pd

    train = pd.DataFrame({"x": [0.1, 0.2, 0.3, 0.4] * 5, "label": [0, 1] * 10})
    return write_project(tmp_path, train, train, toml_extra=f'[artifacts]\ntraining_log = "{log_name}"\n')


def _epochs(n=12, nan_at=None):
    """A healthy run: train and valid loss fall, accuracy rises; `nan_at` plants a NaN training loss."""
    rows = []
    for e in range(n):
        loss = 1.2 * 0.85 ** e + 0.1
        rows.append({"epoch": e, "loss": math.nan if e == nan_at else loss, "accuracy": 0.5 + 0.03 * e,
                     "val_loss": loss + 0.05, "val_accuracy": 0.48 + 0.03 * e})
    return rows


def _keras_log(path, rows):
    lines = ["epoch,accuracy,loss,val_accuracy,val_loss"]
    lines += [f"{r['epoch']},{r['accuracy']},{r['loss']},{r['val_accuracy']},{r['val_loss']}" for r in rows]
    path.write_text("\n".join(lines) + "\n")   # Keras writes a NaN as "nan"


# --- by content -----------------------------------------------------------------------------------
def test_keras_training_log_is_read_by_content(tmp_path):
    from mltriage.checks.io.logs import read_training_log

    _keras_log(tmp_path / "training.log", _epochs())
    curves = read_training_log(tmp_path / "training.log")
    assert curves.source_format == "keras_csv"
    assert curves.has("train_loss") and curves.has("valid_loss") and curves.metric_name == "accuracy"
    assert len(curves.index) == 12
    assert run_check(_project(tmp_path, "training.log"), "training.divergence").status == "pass"


def test_binary_file_is_one_clear_error_not_six(tmp_path):
    (tmp_path / "training.log").write_bytes(b"\x00\x01\x02garbage\x00" * 50)
    ctx = context_for(_project(tmp_path, "training.log"))
    findings = {cid: run_check(ctx, cid) for cid in CURVE_CHECKS}
    assert findings["training.divergence"].status == "error"
    assert "training.log" in findings["training.divergence"].title + findings["training.divergence"].detail
    for cid in CURVE_CHECKS[1:]:
        assert findings[cid].status == "skipped", (cid, findings[cid].title)
        assert "training.divergence" in findings[cid].title


def test_plain_text_epoch_log(tmp_path):
    from mltriage.checks.io.logs import read_training_log

    lines = ["Starting training on cpu", "some warning: nothing to see"]
    for r in _epochs():
        lines.append(f"epoch {r['epoch']} loss {r['loss']:.4f} acc {r['accuracy']:.3f} "
                     f"val_loss {r['val_loss']:.4f} val_acc {r['val_accuracy']:.3f}")
    (tmp_path / "train.out").write_text("\n".join(lines) + "\n")
    curves = read_training_log(tmp_path / "train.out")
    assert curves.source_format == "text"
    assert len(curves.index) == 12 and curves.has("train_loss") and curves.has("valid_loss")
    assert curves.valid_loss[0] == pytest.approx(_epochs()[0]["val_loss"], abs=1e-4)
    assert run_check(_project(tmp_path, "train.out"), "training.overfitting").status == "pass"


def test_plain_text_step_log(tmp_path):
    from mltriage.checks.io.logs import read_training_log

    lines = [f"step={s} loss={2.0 * 0.99 ** s + 0.1:.4f} lr=0.001" for s in range(0, 300, 1)]
    (tmp_path / "log.txt").write_text("\n".join(lines) + "\n")
    curves = read_training_log(tmp_path / "log.txt")
    assert curves.source_format == "text" and len(curves.step_loss) == 300
    assert curves.step[:3] == [0.0, 1.0, 2.0]


def test_prose_is_not_a_log(tmp_path):
    from mltriage.checks.io.logs import TrainingLogError, read_training_log

    (tmp_path / "notes.txt").write_text("We trained for 3 days.\nIt went fine.\nThe end.\n")
    with pytest.raises(TrainingLogError):
        read_training_log(tmp_path / "notes.txt")


def test_keras_style_stdout_with_two_word_names():
    from mltriage.checks.io.log_files import _text_line

    record = _text_line("Epoch 3/10 - train loss: 0.42 - val loss: 0.50 - val acc: 0.81")
    assert record == {"epoch": 3.0, "train_loss": 0.42, "val_loss": 0.5, "val_acc": 0.81}


# --- run folders ----------------------------------------------------------------------------------
def _lightning_csv(path, rows, validate_after=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["epoch,step,train_loss_epoch,train_loss_step,val_loss"]
    step = 0
    for r in rows:
        for _ in range(5):
            lines.append(f"{r['epoch']},{step},,{r['loss'] + 0.01 * (step % 3)},")
            step += 1
        lines.append(f"{r['epoch']},{step - 1},,,{r['val_loss']}")
        lines.append(f"{r['epoch']},{step - 1},{r['loss']},,")
    if validate_after:   # trainer.validate(): epoch = max_epochs, the last step, no training loss
        lines.append(f"{len(rows)},{step - 1},,,{rows[-1]['val_loss'] * 3}")
    path.write_text("\n".join(lines) + "\n")


def test_lightning_run_folder_picks_newest_version_and_says_so(tmp_path):
    from mltriage.checks.io.logs import read_training_log

    old, new = tmp_path / "lightning_logs" / "version_0", tmp_path / "lightning_logs" / "version_1"
    _lightning_csv(old / "metrics.csv", _epochs(4))
    _lightning_csv(new / "metrics.csv", _epochs(9))
    os.utime(old / "metrics.csv", (1_000_000, 1_000_000))
    curves = read_training_log(tmp_path)
    assert curves.source_format == "lightning_csv" and len(curves.index) == 9
    assert any("2 runs" in n and "version_1" in n for n in curves.notes), curves.notes
    # a single version folder: no note
    assert read_training_log(new).notes == []


def test_huggingface_output_dir_reads_newest_checkpoint(tmp_path):
    from mltriage.checks.io.logs import read_training_log

    for step, n in ((500, 3), (1000, 6)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        history = [{"epoch": float(e + 1), "eval_loss": 1.0 / (e + 1), "step": (e + 1) * 100} for e in range(n)]
        history += [{"epoch": (e + 0.5), "loss": 1.2 / (e + 1), "step": e * 100 + 50} for e in range(n)]
        (folder / "trainer_state.json").write_text(json.dumps({"log_history": history}, indent=2))
        os.utime(folder / "trainer_state.json", (step * 1000, step * 1000))
    curves = read_training_log(tmp_path)
    assert curves.source_format == "huggingface_trainer_state"
    assert len([v for v in curves.valid_loss if math.isfinite(v)]) == 6
    assert any("checkpoint-1000" in n for n in curves.notes)


# --- NaN in a log ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["keras", "jsonl", "text", "lightning"])
def test_nan_loss_in_log_fails_divergence_and_clean_twin_passes(tmp_path, fmt):
    for planted in (True, False):
        root = tmp_path / ("nan" if planted else "clean")
        root.mkdir()
        rows = _epochs(nan_at=6 if planted else None)
        if fmt == "keras":
            name = "training.log"
            _keras_log(root / name, rows)
        elif fmt == "jsonl":
            name = "log.jsonl"
            # Python's json writes NaN as NaN; validation rows carry no loss key at all (not logged)
            lines = [json.dumps({"epoch": r["epoch"], "loss": r["loss"]}) for r in rows]
            lines += [json.dumps({"epoch": r["epoch"], "val_loss": r["val_loss"]}) for r in rows]
            (root / name).write_text("\n".join(lines) + "\n")
        elif fmt == "text":
            name = "train.log"
            (root / name).write_text("\n".join(f"epoch {r['epoch']} loss {r['loss']} val_loss {r['val_loss']}"
                                               for r in rows) + "\n")
        else:
            name = "metrics.csv"
            _lightning_csv(root / name, rows)
        finding = run_check(_project(root, name), "training.divergence")
        if planted:
            assert finding.status == "fail", (fmt, finding.title, finding.detail)
            assert "NaN" in finding.title
        else:
            assert finding.status == "pass", (fmt, finding.title, finding.detail)


# --- trainer.validate() after fit ---------------------------------------------------------------
def test_lightning_validate_row_is_not_a_training_epoch(tmp_path):
    from mltriage.checks.io.logs import read_training_log

    _lightning_csv(tmp_path / "metrics.csv", _epochs(10), validate_after=True)
    curves = read_training_log(tmp_path / "metrics.csv")
    assert len(curves.index) == 10 and curves.index[-1] == 9
    assert curves.valid_loss[-1] == pytest.approx(_epochs(10)[-1]["val_loss"])
    assert any("validate" in n for n in curves.notes)
    ctx = context_for(_project(tmp_path, "metrics.csv"))
    assert run_check(ctx, "training.divergence").status == "pass"
    assert run_check(ctx, "training.overfitting").status == "pass"
    # clean twin: without the validate row the curves are the same
    _lightning_csv(tmp_path / "plain.csv", _epochs(10))
    plain = read_training_log(tmp_path / "plain.csv")
    assert plain.index == curves.index and plain.valid_loss == curves.valid_loss and plain.notes == []


def test_text_log_with_commas_is_not_a_csv(tmp_path):
    from mltriage.checks.io.logs import read_training_log

    (tmp_path / "run.txt").write_text("".join(f"epoch: {e}, loss: {1 / (e + 1):.3f}, val_loss: {1.1 / (e + 1):.3f}\n"
                                              for e in range(6)))
    curves = read_training_log(tmp_path / "run.txt")
    assert curves.source_format == "text" and len(curves.index) == 6 and curves.has("valid_loss")


def test_single_column_csv_is_still_a_csv(tmp_path):
    from mltriage.checks.io.logs import read_training_log

    (tmp_path / "losses.csv").write_text("loss\n0.9\n0.7\n0.6\n0.5\n")
    curves = read_training_log(tmp_path / "losses.csv")
    assert curves.source_format == "csv" and curves.train_loss == [0.9, 0.7, 0.6, 0.5]


def test_cli_unreadable_log_is_said_once(tmp_path):
    import subprocess
    import sys

    (tmp_path / "training.log").write_bytes(b"\x00\x01 not a log \x00" * 20)
    root = _project(tmp_path, "training.log")
    proc = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--steps", "training",
                           "--format", "json"], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    errors = [f for f in findings if f["status"] == "error"]
    assert [f["check"] for f in errors] == ["training.divergence"], errors
    assert "training.log" in errors[0]["title"] + errors[0]["detail"]
    pointing = [f for f in findings if f["status"] == "skipped" and "training.divergence" in f["title"]]
    assert {f["check"] for f in pointing} >= set(CURVE_CHECKS[1:])

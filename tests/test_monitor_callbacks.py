"""LightningMonitor and HFMonitor (DESIGN §9) in real Lightning and transformers training runs; each
framework is optional, so its test is skipped where it is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest


def _records(path):
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    header, body = lines[0], lines[1:]
    steps = [r for r in body if "loss" in r and "layers" in r]
    evals = [r for r in body if "eval" in r]
    return header, steps, evals, body


def test_monitor_module_imports_without_frameworks():
    """Importing mltriage.checks.monitor imports neither Lightning nor transformers."""
    code = ("import sys; import mltriage.checks.monitor as m; "
            "print(any(n.split('.')[0] in ('lightning', 'pytorch_lightning', 'transformers') for n in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_lightning_monitor_records_a_real_fit(tmp_path):
    L = pytest.importorskip("lightning.pytorch")
    import torch
    import torch.nn as nn
    from mltriage.checks.monitor_callbacks import LightningMonitor
    from torch.utils.data import DataLoader, TensorDataset

    class Lit(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    X = torch.randn(256, 8)
    y = (X[:, 0] > 0).long()
    train = DataLoader(TensorDataset(X, y), batch_size=16)
    valid = DataLoader(TensorDataset(X[:64], y[:64]), batch_size=32)
    path = tmp_path / "mon.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = L.Trainer(max_epochs=3, callbacks=[LightningMonitor(every=4, path=path)], logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            accelerator="cpu", num_sanity_val_steps=1)
        trainer.fit(Lit(), train, valid)
    header, steps, evals, body = _records(path)
    assert header["monitor"] == 1 and "net.0" in header["layers"]
    assert len(steps) == 3 * 16 // 4                    # every 4th of 48 optimizer steps
    assert all(isinstance(r["loss"], float) for r in steps)
    assert all("update_ratio" in r["layers"]["net.0"] and r["layers"]["net.0"]["grad_norm"] > 0 for r in steps)
    assert any("dead_fraction" in r["layers"].get("net.1", {}) for r in steps)
    assert len(evals) == 3 and all("val_loss" in e["eval"] for e in evals)   # not the sanity check
    assert body[-1].get("end") is True


def test_hf_monitor_records_a_real_trainer_run(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    import torch
    import torch.nn as nn
    from mltriage.checks.monitor_callbacks import HFMonitor
    from transformers import Trainer, TrainingArguments

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))

        def forward(self, x, labels=None):
            logits = self.net(x)
            loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return {"loss": loss, "logits": logits}

    torch.manual_seed(0)
    X = torch.randn(256, 8)
    y = (X[:, 0] > 0).long()
    data = [{"x": X[i], "labels": y[i]} for i in range(256)]
    path = tmp_path / "mon.jsonl"
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=40, per_device_train_batch_size=16,
                             learning_rate=0.05, logging_steps=10, eval_strategy="steps", eval_steps=20,
                             save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True,
                             dataloader_num_workers=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = Trainer(model=Model(), args=args, train_dataset=data, eval_dataset=data[:64],
                          callbacks=[HFMonitor(every=5, path=path)])
        trainer.train()
    header, steps, evals, body = _records(path)
    assert "net.0" in header["layers"]
    assert len(steps) == 8
    assert all(isinstance(r["loss"], float) for r in steps), steps[0]
    assert all("update_ratio" in r["layers"]["net.0"] for r in steps)
    assert any("saturated_fraction" in r["layers"].get("net.1", {}) for r in steps)
    assert len(evals) == 2 and all("eval_loss" in e["eval"] for e in evals)
    assert body[-1].get("end") is True


def test_callback_never_raises_into_training(tmp_path):
    pytest.importorskip("lightning.pytorch")
    from mltriage.checks.monitor_callbacks import LightningMonitor

    cb = LightningMonitor(path=tmp_path / "no" / "\0bad")

    class Trainer:
        optimizers = []
        sanity_checking = False
        callback_metrics = {}

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        cb.on_fit_start(Trainer(), object())          # not a model: the monitor disables itself
        cb.on_validation_end(Trainer(), object())
        cb.on_fit_end(Trainer(), object())

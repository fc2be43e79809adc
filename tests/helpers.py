"""Helpers for tests: write small projects into a temporary folder and run checks on them."""

from __future__ import annotations

import textwrap
from pathlib import Path


def _toml_value(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def write_project(root: Path, train_df, valid_df=None, test_df=None, toml_extra: str = "",
                  model_code: str | None = None, target: str = "label", fmt: str = "csv", **data_keys) -> Path:
    """Write splits (DataFrames) and a mltriage.toml into `root`; returns `root`.

    data_keys go into [data] (e.g. classes=[...], ignore=[...], text=[...]). `model_code` is written to
    model.py; add the [model] section yourself through `toml_extra`.
    """
    root = Path(root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    lines = ["[data]"]
    for name, df in (("train", train_df), ("valid", valid_df), ("test", test_df)):
        if df is None:
            continue
        path = root / "data" / f"{name}.{fmt}"
        if fmt == "csv":
            df.to_csv(path, index=False)
        elif fmt == "parquet":
            df.to_parquet(path, index=False)
        elif fmt == "jsonl":
            df.to_json(path, orient="records", lines=True)
        else:
            raise ValueError(fmt)
        lines.append(f'{name} = "data/{name}.{fmt}"')
    lines.append(f"target = {_toml_value(target)}")
    for key, value in data_keys.items():
        lines.append(f"{key} = {_toml_value(value)}")
    text = "\n".join(lines) + "\n\n" + textwrap.dedent(toml_extra).strip() + "\n"
    (root / "mltriage.toml").write_text(text)
    if model_code is not None:
        (root / "model.py").write_text(textwrap.dedent(model_code))
    return root


def context_for(root: Path, budget: float | None = None):
    from mltriage.checks.engine.context import RunContext
    from mltriage.checks.project.config import load_project

    ctx = RunContext(load_project(root), budget_seconds=budget)
    ctx.prepare()
    return ctx


def run_check(root_or_ctx, check_id: str):
    """Run one check in-process and return its Finding."""
    from mltriage.checks.engine.context import RunContext
    from mltriage.checks.engine.run import run_one
    from mltriage.checks.engine.registry import all_checks

    ctx = root_or_ctx if isinstance(root_or_ctx, RunContext) else context_for(root_or_ctx)
    return run_one(all_checks()[check_id], ctx)


# A tiny, correct PyTorch project: logits + cross entropy, eval-mode predict.
GOOD_TORCH_MODEL = '''
import torch
import torch.nn as nn


def build_model(n_inputs, n_outputs):
    return nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Linear(32, n_outputs))


def train_step(model, optimizer, loss_fn, xb, yb):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    optimizer.step()
    return loss.item()


def predict(model, X):
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(X), dim=1)
'''


# Checks that misbehave on purpose, for engine tests. Registered in the sanity step; replace
# "sanity." to put them in another step.
ENGINE_PLUGIN = '''
import os, time
from mltriage.checks.engine.registry import check
from mltriage.checks.findings import passed, SkipCheck


@check("sanity.zz_ok", title="fine")
def ok(ctx):
    return passed("fine", evidence={"rows": len(ctx.train)})


@check("sanity.zz_raises")
def raises(ctx):
    raise RuntimeError("boom inside the check")


@check("sanity.zz_skip")
def skip(ctx):
    raise SkipCheck("needs something else")


@check("sanity.zz_needs_test", needs=("test",))
def needs_test(ctx):
    return passed("has test")


@check("sanity.zz_hang", timeout=1.5)
def hang(ctx):
    while True:
        time.sleep(0.05)


@check("sanity.zz_crash")
def crash(ctx):
    os._exit(3)


@check("sanity.zz_after")
def after(ctx):
    return passed("still running after trouble")
'''


def install_plugin(tmp_path: Path, monkeypatch, module: str, source: str) -> None:
    """Make `source` importable as `module` here and in worker processes, and register it through
    MLTRIAGE_PLUGINS. Its checks are registered into a copy of the registry that is dropped after the
    test, so that they never leak into later tests (one of them ends the process on purpose)."""
    import sys

    from mltriage.checks.engine import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.delitem(sys.modules, module, raising=False)  # imported afresh: registers into the copy
    (tmp_path / "plug").mkdir(exist_ok=True)
    (tmp_path / "plug" / f"{module}.py").write_text(textwrap.dedent(source))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "plug"))
    monkeypatch.setenv("MLTRIAGE_PLUGINS", module)
    monkeypatch.syspath_prepend(str(tmp_path / "plug"))

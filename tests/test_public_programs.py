"""Five well-known public PyTorch programs, written as their users write them (issue 14): mltriage must
raise no `fail` and no `error` on the correct versions, and run the model sanity checks on each.

The programs live in tests/fixtures/programs/ (README there names the originals). Two kinds of tests:
- the program itself runs as its user runs it, without mltriage (Dataset, DataLoader, two steps of the
  user's own train_step, predict): these pin the fixtures down and run today;
- `mltriage check` end to end on a copy of each program (marked `needs_tensor_support` until the
  tensor-project core lands in RunContext).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
import sys
import tomllib
from pathlib import Path

import pytest

PROGRAMS_DIR = Path(__file__).parent / "fixtures" / "programs"

TENSOR_SUPPORT = hasattr(importlib.import_module("mltriage.checks.engine.context").RunContext, "tensor_split")
needs_tensor_support = pytest.mark.skipif(
    not TENSOR_SUPPORT, reason="tensor projects (DESIGN §3b) are not wired into RunContext yet")

# (folder, project file, output width): the width is the number of classes, or the vocabulary for the LM.
# The language model's outputs are (N, T, V) per target position; the flat variant's are (N*T, V).
PROGRAMS = [
    ("mnist_cnn", "mltriage.toml", 10),
    ("cifar_tutorial", "mltriage.toml", 10),
    ("text_embeddingbag", "mltriage.toml", 4),
    ("text_embeddingbag", "mltriage.sparse.toml", 4),
    ("word_lm", "mltriage.toml", 190),
    ("word_lm", "mltriage.flat.toml", 190),
    ("lightning_mnist", "mltriage.toml", 10),
]
FLAT_OUTPUT = {"mltriage.flat.toml"}
PROGRAM_IDS = [f"{folder}/{toml}" for folder, toml, _ in PROGRAMS]

# The model checks every program must reach (DESIGN §6): none of them may say `skipped`.
MUST_RUN = ("sanity.forward_pass", "sanity.loss_at_init", "sanity.loss_shapes",
            "sanity.overfit_small_batch", "sanity.gradient_flow")


def _require_lightning(folder: str) -> None:
    """Skip a Lightning program when lightning cannot be imported. Not only ImportError: a torchvision
    built for another torch makes `import lightning` raise RuntimeError (through torchmetrics)."""
    if folder != "lightning_mnist":
        return
    try:
        importlib.import_module("lightning")
    except Exception as exc:  # noqa: BLE001 - any failure to import means the extra is unusable here
        pytest.skip(f"lightning is not importable here: {type(exc).__name__}: {str(exc)[:200]}")


def _project(folder: str, toml: str) -> dict:
    return tomllib.loads((PROGRAMS_DIR / folder / toml).read_text())


def _user_module(folder: str):
    """The program's code, imported from its file as mltriage does (a fresh module per program)."""
    path = PROGRAMS_DIR / folder / "train.py"
    spec = importlib.util.spec_from_file_location(f"public_program_{folder}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the programs run as their users run them (no mltriage) ---------------------------------------------

def _loss_fn(name: str):
    from torch import nn

    return {"cross_entropy": nn.CrossEntropyLoss(), "nll": nn.NLLLoss()}[name]


def _optimizer(module, model_cfg: dict, params):
    import torch

    name, lr = model_cfg["optimizer"], model_cfg["lr"]
    builtin = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    return builtin[name](params, lr=lr) if name in builtin else getattr(module, name)(params, lr)


def _loaders(module, model_cfg: dict):
    """Seeded train loader and one valid batch, as a user builds them (their collate when they have one)."""
    import torch
    from torch.utils.data import DataLoader

    collate = getattr(module, model_cfg["collate"]) if "collate" in model_cfg else None
    make = getattr(module, model_cfg["dataset"])
    train = DataLoader(make("train"), batch_size=model_cfg["batch_size"], shuffle=True, collate_fn=collate,
                       generator=torch.Generator().manual_seed(0))
    valid = DataLoader(make("valid"), batch_size=32, collate_fn=collate)
    return train, next(iter(valid))


def _parameters_snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _assert_updated(before: dict, model) -> None:
    import torch

    moved = [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert moved, "two train steps changed no parameter"


def _assert_scores_shape(scores, yb, width: int, flat: bool = False) -> None:
    scores = scores[0] if isinstance(scores, tuple) else scores
    expected = (yb.numel(), width) if flat else (*yb.shape, width)
    assert tuple(scores.shape) == expected, (tuple(scores.shape), tuple(yb.shape))
    assert bool(scores.isfinite().all())


@pytest.mark.parametrize("folder, toml, width", [p for p in PROGRAMS if p[0] != "lightning_mnist"],
                         ids=[i for i in PROGRAM_IDS if not i.startswith("lightning")])
def test_the_program_trains_as_its_user_runs_it(folder, toml, width):
    import torch

    torch.manual_seed(0)
    module, model_cfg = _user_module(folder), _project(folder, toml)["model"]
    model = getattr(module, model_cfg["build"])()
    optimizer = _optimizer(module, model_cfg, model.parameters())
    step = getattr(module, model_cfg["train_step"])
    train, (xv, yv) = _loaders(module, model_cfg)
    before = _parameters_snapshot(model)
    batches = iter(train)
    losses = [step(model, optimizer, _loss_fn(model_cfg["loss"]), *next(batches)) for _ in range(2)]
    assert all(isinstance(v, float) and math.isfinite(v) for v in losses), losses
    _assert_updated(before, model)
    _assert_scores_shape(getattr(module, model_cfg["predict"])(model, xv), yv, width, flat=toml in FLAT_OUTPUT)


@pytest.mark.parametrize("folder", sorted({p[0] for p in PROGRAMS if p[0] != "lightning_mnist"}))
def test_a_split_the_program_does_not_have_raises_key_error(folder):
    module = _user_module(folder)
    with pytest.raises(KeyError):
        module.make_dataset("test")


def test_the_lightning_program_trains_without_a_trainer():
    """What mltriage's probes do with a LightningModule (DESIGN §3b): training_step and
    configure_optimizers called directly, the splits from the LightningDataModule."""
    _require_lightning("lightning_mnist")
    import torch

    torch.manual_seed(0)
    module = _user_module("lightning_mnist")
    datamodule, model = module.DigitsDataModule(), module.LitModel()
    datamodule.setup("fit")
    optimizer = model.configure_optimizers()
    before = _parameters_snapshot(model)
    for batch_idx, batch in zip(range(2), datamodule.train_dataloader()):
        optimizer.zero_grad()
        loss = model.training_step(batch, batch_idx)
        loss.backward()
        optimizer.step()
        assert math.isfinite(loss.item())
    _assert_updated(before, model)
    xv, yv = next(iter(datamodule.val_dataloader()))
    _assert_scores_shape(module.predict(model, xv), yv, 10)


# --- mltriage check, end to end -------------------------------------------------------------------------

def _cli_check(project_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(project_file), "--format", "json"],
                          capture_output=True, text=True, timeout=600, check=False)


def _describe(findings: list[dict]) -> str:
    return "\n".join(f"- {f['check']} [{f['status']}] {f['title']}\n    {str(f.get('detail', ''))[:600]}"
                     for f in findings)


def _checked_copy(program: tuple) -> subprocess.CompletedProcess:
    folder, toml, _ = program
    # A copy: the run writes .mltriage/ next to the project file, and saved runs feed later checks.
    root = Path(tempfile.mkdtemp(prefix="mltriage-program-"))
    try:
        copy = shutil.copytree(PROGRAMS_DIR / folder, root / folder)
        return _cli_check(copy / toml)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@lru_cache(maxsize=1)
def _all_checked() -> dict:
    """Every program checked once per session, two at a time (the machine has two cores)."""
    runnable = [p for p in PROGRAMS if p[0] != "lightning_mnist" or _has_lightning()]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip([p[:2] for p in runnable], pool.map(_checked_copy, runnable)))


def _has_lightning() -> bool:
    try:
        _require_lightning("lightning_mnist")
        return True
    except pytest.skip.Exception:
        return False


@needs_tensor_support
@pytest.mark.parametrize("folder, toml, width", PROGRAMS, ids=PROGRAM_IDS)
def test_mltriage_finds_no_fail_on_the_correct_program(folder, toml, width):
    _require_lightning(folder)
    result = _all_checked()[(folder, toml)]
    assert "Traceback (most recent call last)" not in result.stdout + result.stderr, result.stderr[-3000:]
    assert result.returncode in (0, 1), f"exit {result.returncode}\n{result.stderr[-3000:]}"
    findings = json.loads(result.stdout)["findings"]
    broken = [f for f in findings if f["status"] in ("fail", "error")]
    assert not broken, f"{folder}/{toml}: mltriage cried wolf on a correct program:\n{_describe(broken)}"
    by_id = {f["check"]: f for f in findings}
    not_run = [c for c in MUST_RUN if c not in by_id or by_id[c]["status"] == "skipped"]
    assert not not_run, f"{folder}/{toml}: these checks did not run: {not_run}\n" + _describe(
        [by_id[c] for c in not_run if c in by_id])

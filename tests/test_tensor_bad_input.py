"""Tensor projects (DESIGN §3b) whose code does not give mltriage what it needs (issue 14, "Bad input").

Each is one clear message naming the function and what it must return (DESIGN §4): exit 2 with that
message first when nothing can run, or an `error` finding naming the function when one check cannot, and
never a Python traceback. The projects live in tests/fixtures/tensor_bad/, one defect each.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BAD_DIR = Path(__file__).parent / "fixtures" / "tensor_bad"

TENSOR_SUPPORT = hasattr(importlib.import_module("mltriage.checks.engine.context").RunContext, "tensor_split")
pytestmark = pytest.mark.skipif(not TENSOR_SUPPORT,
                                reason="tensor projects (DESIGN §3b) are not wired into RunContext yet")

DATASET_KEY = '[model] dataset = "make_dataset"'


def _check(tmp_path: Path, name: str) -> subprocess.CompletedProcess:
    # A copy: the run writes .mltriage/ next to the project file.
    copy = shutil.copytree(BAD_DIR / name, tmp_path / name)
    result = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(copy), "--format", "json"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert TRACEBACK not in result.stdout + result.stderr, f"{name}: a Python traceback reached the user\n" + (
        _with_traceback(result.stdout) or result.stderr[-2000:])
    return result


TRACEBACK = "Traceback (most recent call last)"


def _with_traceback(stdout: str) -> str:
    """The findings whose detail carries a traceback (the checks that broke), one line each."""
    try:
        findings = json.loads(stdout)["findings"]
    except (ValueError, KeyError):
        return stdout[-2000:]
    return "\n".join(f"- {f['check']} [{f['status']}] {f['title'][:200]}" for f in findings
                     if TRACEBACK in f"{f['title']}{f['detail']}")


def _first_paragraph(stderr: str) -> str:
    return stderr.strip().split("\n\n")[0]


def _assert_refused(result: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2, and the message's first paragraph says what is wrong: every word in `words` is there."""
    assert result.returncode == 2, f"exit {result.returncode}, expected 2\n{result.stderr[-2000:]}"
    assert result.stderr.startswith("mltriage: "), result.stderr[-2000:]
    message = _first_paragraph(result.stderr)
    missing = [w for w in words if w not in message]
    assert not missing, f"the message does not say {missing}:\n{message}"


def _findings(result: subprocess.CompletedProcess) -> dict[str, dict]:
    assert result.returncode in (0, 1), f"exit {result.returncode}\n{result.stderr[-2000:]}"
    return {f["check"]: f for f in json.loads(result.stdout)["findings"]}


def _assert_error_naming(finding: dict, *words: str) -> None:
    assert finding["status"] == "error", f"{finding['check']}: {finding['status']}: {finding['title']}"
    text = f"{finding['title']}\n{finding['detail']}"
    missing = [w for w in words if w not in text]
    assert not missing, f"{finding['check']} does not say {missing}:\n{text[:1500]}"


def _assert_refused_or_error(result, check_id: str, *words: str) -> None:
    """Either is a clear answer: the project refused (exit 2) or the check that cannot run says why."""
    if result.returncode == 2:
        _assert_refused(result, *words)
    else:
        _assert_error_naming(_findings(result)[check_id], *words)


# --- nothing can run: the Dataset itself is unusable -> exit 2 ----------------------------------------------

def test_a_make_dataset_that_raises_is_named_with_its_error(tmp_path):
    result = _check(tmp_path, "dataset_raises")
    _assert_refused(result, DATASET_KEY, "FileNotFoundError", "train.pt", "must return")


def test_a_make_dataset_returning_a_list_of_strings_says_it_must_return_a_dataset(tmp_path):
    result = _check(tmp_path, "not_a_dataset")
    _assert_refused(result, DATASET_KEY, "Dataset", "must")


def test_items_that_are_not_pairs_say_an_item_must_be_x_y(tmp_path):
    result = _check(tmp_path, "items_not_pairs")
    _assert_refused(result, DATASET_KEY, "(x, y)")


# --- one part cannot run: the checks that need it say why ------------------------------------------------

def test_items_of_different_shapes_without_a_collate_ask_for_one(tmp_path):
    result = _check(tmp_path, "ragged_without_collate")
    _assert_refused_or_error(result, "sanity.forward_pass", "[model] collate")


def test_a_forward_needing_an_argument_mltriage_cannot_supply_is_named(tmp_path):
    result = _check(tmp_path, "forward_needs_lengths")
    _assert_refused_or_error(result, "sanity.forward_pass", "forward", "lengths")
    if result.returncode != 2:
        # The data itself is fine: the checks that do not call the model still run.
        assert _findings(result)["sanity.data_loads"]["status"] == "pass"


def test_a_lightning_module_without_configure_optimizers_is_named(tmp_path):
    try:
        importlib.import_module("lightning")
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken torchvision/torchmetrics underneath
        pytest.skip(f"lightning is not importable here: {type(exc).__name__}: {str(exc)[:200]}")
    result = _check(tmp_path, "lightning_without_optimizers")
    _assert_refused_or_error(result, "sanity.overfit_small_batch", "configure_optimizers", "must return")
    if result.returncode != 2:
        # Only training needs an optimizer: the forward pass still runs and passes.
        assert _findings(result)["sanity.forward_pass"]["status"] == "pass"

"""Shared fixtures for the app's Pilot and snapshot tests: a tiny project and a fixed saved run."""

from __future__ import annotations

import json
from pathlib import Path

TOML = """# A tiny project for the app tests.
[project]
name = "tiny"   # shown in the top bar
task = "classification"

[data]
train = "data/train.csv"
valid = "data/valid.csv"
target = "label"
"""


def write_tiny_project(root: Path) -> Path:
    """A two-feature classification project (csv written by hand: no pandas needed)."""
    root = Path(root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    for name, n, offset in (("train", 60, 0), ("valid", 20, 1000)):
        rows = ["a,b,label"]
        for i in range(n):
            k = i + offset
            label = "yes" if k % 3 else "no"
            rows.append(f"{(k * 7) % 11 / 10:.2f},{(k * 5) % 13 / 10:.2f},{label}")
        (root / "data" / f"{name}.csv").write_text("\n".join(rows) + "\n")
    (root / "mltriage.toml").write_text(TOML)
    return root


def fixed_run() -> dict:
    """A saved run with every kind of finding the screens show, including plots (DESIGN §5 schema)."""
    def finding(check, status, title, detail="", fix="", evidence=None, plots=None):
        return {"check": check, "step": check.split(".")[0], "status": status, "title": title,
                "detail": detail, "fix": fix, "evidence": evidence or {}, "seconds": 0.05, "plots": plots or []}

    bar = {"kind": "bar", "title": "examples per class", "x_label": "class", "y_label": "rows",
           "x_log": False, "y_log": False, "matrix": None, "row_labels": None, "col_labels": None,
           "series": [{"name": "train", "x": ["no", "yes"], "y": [20, 40]},
                      {"name": "valid", "x": ["no", "yes"], "y": [7, 13]}]}
    curve = {"kind": "line", "title": "loss vs learning rate", "x_label": "learning rate", "y_label": "loss",
             "x_log": True, "y_log": False, "matrix": None, "row_labels": None, "col_labels": None,
             "series": [{"name": "loss", "x": [10 ** (-6 + i / 4) for i in range(25)],
                         "y": [1.1 - 0.04 * i if i < 18 else 0.4 + (i - 17) ** 2 * 0.3 for i in range(25)]}]}
    confusion = {"kind": "heatmap", "title": "confusion (valid)", "x_label": "predicted", "y_label": "true",
                 "x_log": False, "y_log": False, "series": [], "matrix": [[5, 2], [1, 12]],
                 "row_labels": ["no", "yes"], "col_labels": ["no", "yes"]}
    findings = [
        finding("problem.task_type", "pass", "classification into 2 classes on 'label' (declared)",
                evidence={"declared_task": "classification", "inferred_task": "classification"}),
        finding("problem.class_balance", "pass", "2 classes, largest/smallest = 2.0x in train",
                evidence={"counts": {"train": {"no": 20, "yes": 40}, "valid": {"no": 7, "yes": 13}}},
                plots=[bar]),
        finding("data.split_overlap", "fail", "12 valid rows also appear in train",
                detail="12 of 20 valid rows (60.0%) also appear in train. Valid scores overstate new data.",
                fix="Deduplicate before splitting; split by a group key.",
                evidence={"overlap_rows": 12, "valid_rows": 20}),
        finding("data.missing_values", "pass", "no missing values in features or target"),
        finding("data.outliers", "warn", "3 values beyond 5 robust SDs in 'a'",
                detail="Column 'a' has 3 values more than 5 MADs from the median.",
                fix="Check the units of those rows; clip or drop them if they are recording errors.",
                evidence={"column": "a", "count": 3, "threshold_mad": 5.0}),
        finding("training.lr_range", "warn", "configured lr 5 is past where the loss blows up",
                detail="The range test's loss falls best near 1e-3 and diverges above 0.1.",
                fix="Use lr = 0.001.", evidence={"configured_lr": 5.0, "suggested_lr": 0.001},
                plots=[curve]),
        finding("metrics.confusion", "info", "most errors: yes predicted as no",
                evidence={"matrix": [[5, 2], [1, 12]]}, plots=[confusion]),
        finding("sanity.model_builds", "skipped", "no [model] section",
                detail="Add [model] code and build to mltriage.toml."),
    ]
    summary = {s: sum(1 for f in findings if f["status"] == s)
               for s in ("pass", "info", "warn", "fail", "error", "skipped")}
    return {"mltriage": "0.1.0", "project": "tiny", "findings": findings, "summary": summary,
            "started": 1700000000.0, "seconds": 1.0}


def write_fixed_run(root: Path) -> Path:
    runs = Path(root) / ".mltriage" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / "20231114T221320.json"
    path.write_text(json.dumps(fixed_run()))
    return path


def pilot_test(fn):
    """Run an async Pilot test with asyncio.run (no async pytest plugin is installed)."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        asyncio.run(fn(*args, **kwargs))
    return wrapper

"""'What mltriage understood': the task, target, classes and metric, declared or inferred."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from mltriage.checks.findings import Finding
from mltriage.checks.project.config import ProjectConfig

from ..plain import plain


def _task_rows(cfg: ProjectConfig, findings: dict[str, Finding]) -> list[tuple[str, str, str]]:
    """(key, value, where it comes from) for task, target, classes and metric."""
    evidence = findings.get("problem.task_type")
    ev = evidence.evidence if evidence else {}
    balance = findings.get("problem.class_balance")
    task = cfg.task or ev.get("inferred_task")
    source = "declared" if cfg.task else ("inferred from the target" if task else "run step 1 to infer it")
    classes = cfg.classes
    class_source = "declared"
    counts = balance.evidence.get("counts") if balance else None
    if classes is None and isinstance(counts, dict) and isinstance(counts.get("train"), dict):
        classes, class_source = list(counts["train"]), "found in train"
    default_metric = "accuracy" if task != "regression" else "rmse"
    if classes:
        class_row = ("classes", ", ".join(map(str, classes)), class_source)
    elif task == "regression":
        class_row = ("classes", "-", "")
    else:  # a bare "?" read as a failure to understand; the task row says how to learn it too
        class_row = ("classes", "?", "run step 1 to find them")
    return [("task", task or "?", source), _target_row(cfg), class_row,
            ("metric", cfg.metric or default_metric, "declared" if cfg.metric else "default: not set in mltriage.toml")]


def _target_row(cfg: ProjectConfig) -> tuple[str, str, str]:
    """A tensor project has no target column: say where its labels come from instead of a blank."""
    if cfg.target:
        return "target", cfg.target, "declared"
    if cfg.datamodule:
        return "target", "y of each batch", "LightningDataModule"
    if cfg.dataset:
        return "target", "y of each (x, y) item", "Dataset"
    if cfg.is_tensor and cfg.image_folder:
        return "target", "sub-folder names", "ImageFolder"
    return "target", "?", "not set: [data] target in mltriage.toml"


def problem_summary_text(cfg: ProjectConfig, findings: dict[str, Finding], confirmed: bool) -> Text:
    text = Text()
    text.append("What mltriage understood", style="bold")
    text.append("  (c: confirm/change)\n", style="dim")
    for key, value, note in _task_rows(cfg, findings):
        text.append(f"  {key:<8}", style="bold")
        text.append(plain(value))
        if note:
            text.append(f"  ({note})", style="dim")
        text.append("\n")
    if confirmed:
        text.append("  ✓ confirmed by you", style="green")
    else:
        text.append("  not confirmed yet", style="yellow")
    return text


class ProblemSummary(Static):
    """Shown on the problem step only (id "inferred")."""

    def show(self, cfg: ProjectConfig, findings: dict[str, Finding], confirmed: bool) -> None:
        self.update(problem_summary_text(cfg, findings, confirmed))

"""`from mltriage.monitor import Monitor` (DESIGN §9): the hook for the user's training loop.

`LightningMonitor()` (a Lightning Callback) and `HFMonitor()` (a transformers TrainerCallback) import their
framework only when called."""

from mltriage.checks.monitor import Monitor, default_path, weight_layers  # noqa: F401
from mltriage.checks.monitor_callbacks import HFMonitor, LightningMonitor  # noqa: F401

__all__ = ["HFMonitor", "LightningMonitor", "Monitor", "default_path", "weight_layers"]

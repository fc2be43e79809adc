"""`from mltriage.monitor import Monitor` (DESIGN §9): the hook for the user's training loop."""

from mltriage.checks.monitor import Monitor, default_path, weight_layers  # noqa: F401

__all__ = ["Monitor", "default_path", "weight_layers"]

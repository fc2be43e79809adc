"""mltriage: a guided debugging assistant for machine-learning models."""

__version__ = "0.1.0"

"""The app's screens, one per module; their keys come from the action table (tui/actions.py).

Loaded on first use (PEP 562): the app's first frame needs the main screen only, not the note editor's
TextArea or the finding screen's table."""

from __future__ import annotations

import importlib

_MODULES = {"BrokenProjectScreen": "broken", "ExportScreen": "export", "FindingScreen": "finding",
            "HelpScreen": "help", "MainScreen": "main", "NoteScreen": "note", "ProblemScreen": "problem",
            "RevealScreen": "reveal", "TextScreen": "text", "TourScreen": "tour", "WelcomeScreen": "welcome"}

__all__ = sorted(_MODULES)


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULES[name]}", __name__), name)
    globals()[name] = value
    return value

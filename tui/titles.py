"""The titles of checks not run yet, read from the registry on a thread worker (the check modules are
many; importing them on the event loop would hold up the first frames) and posted as TitlesLoaded."""

from __future__ import annotations

from textual.dom import DOMNode

from .messages import TitlesLoaded


def load_titles(node: DOMNode) -> None:
    """Start reading the titles; `node` receives TitlesLoaded when they are read."""
    node.run_worker(lambda: _read_titles(node), thread=True, group="titles")


def _read_titles(node: DOMNode) -> None:
    try:
        from mltriage.checks.engine.registry import all_checks

        titles = {cid: spec.title for cid, spec in all_checks().items()}
    except Exception:  # a broken check module must not stop the app; the runner reports it
        return
    try:
        node.post_message(TitlesLoaded(titles))
    except RuntimeError:
        pass

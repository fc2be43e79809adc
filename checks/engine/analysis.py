"""Named analyses: a computation several checks read, declared once and computed at most once per run.

    @analysis
    def baseline_scores(ctx) -> Baseline: ...

    baseline_scores(ctx)          # computed on first call, then the cached value (or the cached exception)

The cache lives in the run context (`ctx.shared`), keyed by the function's qualified name and its extra
arguments, so it is thread-safe (the engine's prefetch thread and a check asking for the same analysis
wait for one computation) and an exception is cached too: a broken input fails every check that asks,
fast. `ANALYSES` is the index of every declared analysis (name -> function), replacing free-form string
keys that nothing listed.
"""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

T = TypeVar("T")
ANALYSES: dict[str, Callable] = {}


def analysis(fn: Callable[..., T]) -> Callable[..., T]:
    """Cache fn(ctx, *args) per run context and per args (which must be hashable)."""
    name = f"{fn.__module__.removeprefix('mltriage.checks.')}.{fn.__qualname__}"
    if name in ANALYSES and ANALYSES[name].__wrapped__.__code__ is not fn.__code__:
        raise ValueError(f"two analyses named {name}")

    @functools.wraps(fn)
    def cached(ctx, *args):
        return ctx.shared((name, *args), lambda: fn(ctx, *args))

    cached.analysis_name = name
    ANALYSES[name] = cached
    return cached

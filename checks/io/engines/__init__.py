"""Engines for the exact counting checks on data of any size (DESIGN §3, data larger than memory):
pandas (in memory), DuckDB (embedded, out of core) and Dask (a dask.distributed cluster). Each returns
the same `ExactCounts`."""

from .counts import CountRequest, ExactCounts, count_frames

__all__ = ["CountRequest", "ExactCounts", "count_frames"]

"""The exact counts of the counting checks over every row of the data, whatever its size (DESIGN §3,
[data] engine): missing values, constants, duplicates, overlap, label values and order, class balance.

`exact_counts(ctx)` picks the engine once per run and returns an `ExactCounts` (io/engines/counts.py),
or None when the run reads every row into pandas anyway: then the checks measure the DataFrames as they
always have, which are exact (and keep their findings identical on small projects).
"""

from __future__ import annotations

from pathlib import Path

from ..engine.analysis import analysis
from ..engine.context import RunContext
from ..io.engines.counts import CountRequest, ExactCounts
from ..io.readers import data_bytes, max_read_bytes
from ..project.config import ProjectError

# Formats the out-of-core engines read; JSONL and NPZ stay on pandas (read whole, or sampled).
ENGINE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
SPLITS = ("train", "valid", "test")


def configured_paths(cfg) -> dict[str, Path]:
    """split -> the file or Parquet folder [data] names for it (a held-out valid is not a file)."""
    out = {}
    for name in SPLITS:
        path = getattr(cfg, name, None)
        if path is not None and path != Path():
            out[name] = Path(path)
    return out


def _engine_can_read(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() in ENGINE_SUFFIXES


def choose_engine(engine: str, paths: dict[str, Path]) -> str:
    """The engine a run counts with. "auto": pandas while every split fits under the read limit (it is
    read whole, so the in-memory counts are exact), DuckDB once one is larger (pandas would only see a
    sample)."""
    if engine in ("pandas", "duckdb", "dask"):
        return engine
    if engine != "auto":
        raise ProjectError(f"[data] engine = {engine!r}: use \"pandas\", \"duckdb\", \"dask\" or \"auto\".")
    limit = max_read_bytes()
    too_big = [p for p in paths.values() if data_bytes(p) > limit]
    if too_big and all(_engine_can_read(p) for p in paths.values()):
        return "duckdb"
    return "pandas"


def count_request(ctx: RunContext) -> CountRequest:
    return CountRequest(sources=configured_paths(ctx.config), features=list(ctx.feature_columns),
                        target=ctx.target, classification=ctx.is_classification)


def count_with(engine: str, request: CountRequest, spill_dir: Path | None = None,
               scheduler: str | None = None) -> ExactCounts:
    """Run one engine on `request` (paths)."""
    if engine == "duckdb":
        from ..io.engines.duck import count_duckdb

        return count_duckdb(request, spill_dir)
    if engine == "dask":
        from ..io.engines.dask_engine import count_dask, import_dask

        import_dask()  # the one clear message when Dask is not installed
        return count_dask(request, scheduler)
    from ..io.engines.counts import count_frames

    return count_frames(request)


@analysis
def exact_counts(ctx: RunContext) -> ExactCounts | None:
    """The run's exact counts from DuckDB or Dask, or None when pandas holds every row (see module doc)."""
    cfg = ctx.config
    if ctx.is_tensor or cfg.logs_only:
        return None
    paths = configured_paths(cfg)
    engine = choose_engine(getattr(cfg, "engine", "auto"), paths)
    if engine == "pandas":
        return None
    return count_with(engine, count_request(ctx), cfg.state_dir / "duckdb-spill", getattr(cfg, "scheduler", None))


def counted_splits(counts: ExactCounts, ctx: RunContext, holdout: bool = False) -> list[str]:
    """The splits counted exactly, in train/valid/test order. A valid split held out from train is a
    part of the train file, already inside its counts; `holdout` adds it anyway (counted in memory),
    for checks that judge the validation split itself (problem.class_balance)."""
    names = [s for s in SPLITS if s in counts.rows]
    if holdout and "valid" not in names and "valid" in ctx.splits:
        names.insert(1, "valid")
    return names


# --- the numbers each counting check reads ---------------------------------------------------------
def class_counts(counts: ExactCounts, ctx: RunContext, split: str) -> dict[str, int]:
    """Rows per class (in `classes` order, keyed str(class)) of a split counted exactly."""
    per = counts.label_counts.get(split, {})
    return {str(c): int(per.get(ctx.label_key(c), 0)) for c in ctx.classes}


def outside_classes(counts: ExactCounts, ctx: RunContext, split: str) -> tuple[int, dict[str, int]]:
    """(labelled rows whose label is no class, the 8 most common such values)."""
    known = {ctx.label_key(c) for c in ctx.classes}
    outside = {k: n for k, n in counts.label_counts.get(split, {}).items() if k not in known}
    top = dict(sorted(outside.items(), key=lambda kv: -kv[1])[:8])
    return int(sum(outside.values())), top


def duplicate_numbers(counts: ExactCounts, split: str) -> dict:
    """data.duplicates' per-split numbers (the fields of rows.py's SplitDuplicates), exact."""
    n = counts.rows[split]
    return {"rows": n, "duplicate_rows": counts.duplicate_rows[split],
            "unique_share": counts.distinct_inputs[split] / n if n else 1.0,
            "conflict_rows": counts.conflict_rows[split], "conflict_groups": counts.conflict_groups[split],
            "duplicate_fraction": counts.duplicate_rows[split] / n if n else 0.0}


def overlap_numbers(counts: ExactCounts, split: str) -> dict:
    """data.split_overlap's numbers for one split (rows.py's overlaps entry): rows of `split` whose
    feature values equal a training row's. Text columns are compared as whole values here (the
    in-memory path also matches normalised texts)."""
    n, shared = counts.rows[split], counts.overlap_rows[split]
    return {"rows": shared, "of": n, "exact_rows": shared, "same_text": 0,
            "fraction": shared / n if n else 0.0}


def train_unique_share(counts: ExactCounts) -> float:
    n = counts.rows["train"]
    return counts.distinct_inputs["train"] / n if n else 1.0

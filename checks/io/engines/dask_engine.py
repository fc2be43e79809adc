"""The Dask engine: the exact counts (counts.py) as Dask DataFrame graphs on a dask.distributed cluster,
reading the same files as DuckDB (DESIGN §3: engine = "dask", scheduler = "tcp://host:8786").

Without a scheduler address a LocalCluster is started for the run and closed after it, so no worker
process outlives the command. Dask is an optional extra: pip install 'mltriage[dask]'.
Rows are compared by pandas' 64-bit row hash (collision odds: see duck.py).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from ...project.config import ProjectError
from .counts import (
    CountRequest,
    ExactCounts,
    label_key,
    row_hashes,
    same_neighbours,
    top_share_or_none,
)

LOCAL_WORKERS = 2
# A scheduler that does not answer within this many seconds is reported rather than waited on forever.
CONNECT_TIMEOUT_S = 20
_NULL_LABEL = "\x00<missing>"


def import_dask():
    """(dask.dataframe, distributed), or one ProjectError saying how to install them."""
    try:
        import dask.dataframe as dd
        import distributed
    except ImportError:
        raise ProjectError("[data] engine = \"dask\" needs Dask, which is not installed: "
                           "pip install 'mltriage[dask]' (or set engine = \"duckdb\" to count on this machine)."
                           ) from None
    return dd, distributed


@contextmanager
def dask_client(scheduler: str | None = None, processes: bool = True, workers: int = LOCAL_WORKERS):
    """A distributed Client on `scheduler`, or on a LocalCluster closed (workers and all) on exit."""
    import logging

    _, distributed = import_dask()
    cluster = None
    # the shuffle plugin logs every shuffle at WARNING; a check run's terminal is not the place for it
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        if scheduler:
            try:
                client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S)
            except Exception as exc:  # OSError, TimeoutError: the address is what the user needs
                raise ProjectError(f"[data] scheduler = \"{scheduler}\": could not connect ({exc}). Start the "
                                   f"scheduler (dask scheduler) and workers, or remove scheduler to use a "
                                   f"local cluster.") from None
        else:
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                                               dashboard_address=None, silence_logs=logging.ERROR)
            client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
        quiet.setLevel(level)


def read_split(path: Path, columns: list[str]):
    """A Dask DataFrame of one split (the columns asked for), partitions in file order."""
    dd, _ = import_dask()
    from .duck import parquet_files

    path = Path(path)
    if path.is_dir():
        files = parquet_files(path)
        hive = any("=" in part for f in files for part in f.relative_to(path).parts[:-1])
        return dd.read_parquet(str(path) if hive else [str(f) for f in files], columns=columns)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return dd.read_parquet(str(path), columns=columns)
    if suffix in (".csv", ".tsv"):
        return dd.read_csv(str(path), sep="\t" if suffix == ".tsv" else ",", usecols=columns,
                           dtype_backend="pyarrow", assume_missing=True)
    raise ProjectError(f"{path}: the Dask engine reads CSV/TSV and Parquet (files or folders), not '{suffix}'.")


# --- per-partition pieces (plain pandas; run on the workers) -------------------------------------
def _partition_stats(pdf, columns: list[str]):
    """One row per column: rows, missing, and whether the partition holds one value (and which)."""
    import pandas as pd

    out = []
    for c in columns:
        present = pdf[c].dropna()
        distinct = present.unique()
        top = present.value_counts().index[0] if len(present) else None
        out.append({"column": c, "rows": len(pdf), "missing": int(len(pdf) - len(present)),
                    "distinct_upto2": min(len(distinct), 2), "value": distinct[0] if len(distinct) else None,
                    "top": top})
    return pd.DataFrame(out, columns=["column", "rows", "missing", "distinct_upto2", "value", "top"]).astype(
        {"value": object, "top": object})


def _partition_candidate_counts(pdf, candidates: dict):
    import pandas as pd

    rows = [{"column": c, "k": i, "n": int((pdf[c] == v).sum())}
            for c, values in candidates.items() for i, v in enumerate(values)]
    return pd.DataFrame(rows, columns=["column", "k", "n"])


def _partition_order(pdf, target: str):
    """Equal label neighbours inside the partition, its labelled rows, and its first and last label."""
    import pandas as pd

    values = pdf[target].dropna().to_numpy()
    row = {"same": same_neighbours(values), "n": len(values),
           "first": values[0] if len(values) else None, "last": values[-1] if len(values) else None}
    return pd.DataFrame([row], columns=["same", "n", "first", "last"]).astype({"first": object, "last": object})


def _partition_keys(pdf, features: list[str], target: str):
    import pandas as pd

    y = pdf[target].astype("string").fillna(_NULL_LABEL)
    return pd.DataFrame({"h": row_hashes(pdf, features),
                         "y": y.to_numpy(dtype=object)})


# --- the graphs ----------------------------------------------------------------------------------
def _column_stats(ddf, columns: list[str]) -> dict:
    import pandas as pd

    meta = _partition_stats(pd.DataFrame({c: pd.Series([], dtype=object) for c in columns}), columns)
    parts = ddf.map_partitions(_partition_stats, columns, meta=meta).compute()
    stats = {}
    for c, g in parts.groupby("column", sort=False):
        rows, missing = int(g["rows"].sum()), int(g["missing"].sum())
        values = {label_key(v) for v in g.loc[g["distinct_upto2"] > 0, "value"]}
        single = bool((g["distinct_upto2"] <= 1).all()) and len(values) <= 1
        stats[c] = {"rows": rows, "missing": missing, "constant": missing == rows or (missing == 0 and single),
                    "candidates": list({label_key(v): v for v in g["top"].dropna()}.values())}
    return stats


def _top_shares(ddf, stats: dict, features: list[str]) -> dict[str, float | None]:
    """Exact counts of every partition's top value; a global majority is among them."""
    import pandas as pd

    candidates = {c: stats[c]["candidates"] for c in features if stats[c]["candidates"]}
    best = {c: stats[c]["missing"] for c in features}
    if candidates:
        meta = pd.DataFrame({"column": pd.Series([], dtype=object), "k": pd.Series([], dtype="int64"),
                             "n": pd.Series([], dtype="int64")})
        counts = ddf.map_partitions(_partition_candidate_counts, candidates, meta=meta).compute()
        for c, n in counts.groupby(["column", "k"])["n"].sum().groupby(level=0).max().items():
            best[c] = max(best[c], int(n))
    rows = stats[features[0]]["rows"] if features else 0
    return {c: top_share_or_none(best[c], rows) for c in features}


def _keys(ddf, features: list[str], target: str):
    import pandas as pd

    meta = pd.DataFrame({"h": pd.Series([], dtype="uint64"), "y": pd.Series([], dtype=object)})
    return ddf.map_partitions(_partition_keys, features, target, meta=meta)


def _duplicate_stats(dask, keys, classification: bool) -> dict:
    rows = keys.shape[0]
    distinct_pairs = keys.drop_duplicates().shape[0]
    distinct_inputs = keys["h"].nunique()
    out = {}
    if classification:
        labelled = keys[keys["y"] != _NULL_LABEL].drop_duplicates()
        per_h = labelled.groupby("h").size().to_frame("nl").reset_index()
        sizes = keys.groupby("h").size().to_frame("n").reset_index()
        bad = sizes.merge(per_h[per_h["nl"] > 1], on="h", how="inner")
        n_rows, n_pairs, n_inputs, bad_groups, bad_rows = dask.compute(rows, distinct_pairs, distinct_inputs,
                                                                        bad.shape[0], bad["n"].sum())
        out.update(conflict_groups=int(bad_groups), conflict_rows=int(bad_rows))
    else:
        n_rows, n_pairs, n_inputs = dask.compute(rows, distinct_pairs, distinct_inputs)
        out.update(conflict_groups=0, conflict_rows=0)
    out.update(duplicate_rows=int(n_rows - n_pairs), distinct_inputs=int(n_inputs))
    return out


def _overlap(keys, train_keys) -> int:
    distinct_train = train_keys[["h"]].drop_duplicates()
    return int(keys[["h"]].merge(distinct_train, on="h", how="inner").shape[0].compute())


def _label_order(ddf, target: str) -> tuple[int, int]:
    import pandas as pd

    meta = _partition_order(pd.DataFrame({target: pd.Series([], dtype=object)}), target)
    parts = ddf.map_partitions(_partition_order, target, meta=meta).compute()  # one row per partition, in order
    parts = parts[parts["n"] > 0]
    same = int(parts["same"].sum())
    for last, first in zip(parts["last"].iloc[:-1], parts["first"].iloc[1:]):
        same += int(last == first)
    return same, int(parts["n"].sum())


def _label_counts(ddf, target: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for value, n in ddf[target].dropna().value_counts().compute().items():
        out[label_key(value)] = out.get(label_key(value), 0) + int(n)
    return out


def count_dask(request: CountRequest, scheduler: str | None = None, processes: bool = True) -> ExactCounts:
    """The exact counts of `request` (paths only) as Dask graphs; a local cluster when no scheduler."""
    import dask

    start = time.process_time()
    features, target = list(request.features), request.target
    with dask_client(scheduler, processes=processes):
        try:
            return _count_on_cluster(dask, request, features, target, start)
        except ProjectError:
            raise
        except Exception as exc:  # dask re-raises the workers' errors; the message is what matters
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ProjectError(f"{request.sources.get('train')}: the Dask engine failed: {text}. "
                               f"Set [data] engine = \"duckdb\" to count on this machine.") from None


def _count_on_cluster(dask, request: CountRequest, features: list[str], target: str, start: float) -> ExactCounts:
    frames = {s: read_split(p, features + [target]) for s, p in request.sources.items()}
    out = ExactCounts("dask")
    keys = {}
    for name, ddf in frames.items():
        stats = _column_stats(ddf, features + [target])
        out.rows[name] = stats[target]["rows"]
        out.missing[name] = {c: s["missing"] for c, s in stats.items() if s["missing"]}
        out.constant[name] = [c for c in features if stats[c]["constant"]]
        out.label_counts[name] = _label_counts(ddf, target) if request.classification else {}
        keys[name] = _keys(ddf, features, target).persist()
        for key, value in _duplicate_stats(dask, keys[name], request.classification).items():
            getattr(out, key)[name] = value
        if name == "train":
            out.all_missing = [c for c in features if stats[c]["missing"] == stats[c]["rows"]]
            out.top_share = _top_shares(ddf, stats, features)
    for name in [s for s in frames if s != "train"]:
        out.overlap_rows[name] = _overlap(keys[name], keys["train"])
    if request.classification:
        out.label_same_adjacent, out.label_rows_in_order = _label_order(frames["train"], target)
    out.seconds = time.process_time() - start
    return out

"""Read data files into pandas: CSV/TSV, Parquet, JSONL, NPZ (never unpickled).

Every failure is a ProjectError naming the file and what to do.
"""

from __future__ import annotations

from pathlib import Path

from ..project.config import ProjectError

SUPPORTED = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".npz")
# Files larger than this are streamed and a seeded random sample of rows is kept, so that a 5 GB file
# never exhausts memory; the finding of sanity.data_loads says so. Override: MLTRIAGE_MAX_READ_MB.
DEFAULT_MAX_READ_MB = 1024
SAMPLE_SEED = 0


def max_read_bytes() -> int:
    import math
    import os

    raw = os.environ.get("MLTRIAGE_MAX_READ_MB")
    if raw is None:
        return DEFAULT_MAX_READ_MB * 1024 * 1024
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ProjectError(f"MLTRIAGE_MAX_READ_MB={raw!r} is not a positive number of megabytes. Unset it "
                           f"(default {DEFAULT_MAX_READ_MB}) or set it to, e.g., 4096.")
    return int(value * 1024 * 1024)


def read_table(path: Path, what: str = "data file"):
    """Read one split. `what` names the key it came from, for messages."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        return _finish(_read_parquet_folder(path, what), path, what)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise ProjectError(f"{path}: {what} has an unsupported extension '{suffix}'. "
                           f"Use one of: {', '.join(SUPPORTED)}.")
    if path.stat().st_size == 0:
        raise ProjectError(f"{path}: {what} is empty (0 bytes). Point the project at a file with data.")
    size = path.stat().st_size
    try:
        if size > max_read_bytes() and suffix in (".csv", ".tsv", ".parquet", ".pq"):
            df = _read_sampled(path, suffix, size)
        elif suffix in (".csv", ".tsv"):
            df = _read_delimited(path, "\t" if suffix == ".tsv" else ",")
        elif suffix in (".parquet", ".pq"):
            _use_all_cores_for_reading()
            df = pd.read_parquet(path)
        elif suffix in (".jsonl", ".ndjson"):
            df = pd.read_json(path, lines=True)
        else:
            df = _read_npz(path)
    except ProjectError:
        raise
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{path}: {what} is not UTF-8 text (byte {exc.start}: {exc.reason}). "
                           f"Re-save it as UTF-8.") from None
    except Exception as exc:  # pandas/pyarrow raise many types; the message is what matters
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ProjectError(f"{path}: {what} could not be read: {message}. "
                           f"Check that the file is complete and in the format its extension says.") from None
    return _finish(df, path, what)


def _finish(df, path: Path, what: str):
    if len(df.columns) == 0 or len(df) == 0:
        raise ProjectError(f"{path}: {what} has no rows (only a header, or nothing). "
                           f"Point the project at a file with data.")
    df = _drop_nested_columns(df)
    _combine_string_chunks(df)
    return df


def _drop_nested_columns(df):
    """Columns of lists, dicts or arrays (Parquet list/struct/map, JSON arrays) are no features any check
    can read: they are left out, and sanity.data_loads says which (df.attrs["mltriage_dropped"])."""
    dropped = {}
    for column, dtype in zip(df.columns, df.dtypes):  # dtypes at once: df[column] costs 50 us a column
        if dtype != object:
            continue
        sample = df[column].dropna().head(100)
        kinds = {type(v).__name__ for v in sample if isinstance(v, (list, tuple, dict, set)) or hasattr(v, "shape")}
        if kinds:
            dropped[str(column)] = "/".join(sorted(kinds))
    if not dropped:
        return df
    attrs = dict(df.attrs)
    df = df.drop(columns=list(dropped))
    df.attrs.update(attrs, mltriage_dropped=dropped)
    return df


# One contiguous string buffer must stay addressable by 32-bit offsets (Arrow's `string` type).
_MAX_COMBINED_STRING_BYTES = 1 << 30


def _combine_string_chunks(df) -> None:
    """Give each Arrow-backed string column a single chunk, in place.

    pyarrow parses a CSV in blocks, so a text column arrives as hundreds of chunks; factorising,
    hashing and sampling rows of one contiguous chunk run 2-3x faster (measured on a 1,000,000-row
    review column: factorize 0.32 s -> 0.16 s). Combining copies that one column's text (a few ms)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    for column, dtype in zip(df.columns, df.dtypes):
        if isinstance(dtype, np.dtype):  # numpy columns hold no Arrow chunks
            continue
        array = df[column].array
        chunked = getattr(array, "_pa_array", None)
        if not isinstance(chunked, pa.ChunkedArray) or chunked.num_chunks <= 1:
            continue
        if not (pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type)):
            continue
        if chunked.nbytes > _MAX_COMBINED_STRING_BYTES:
            continue
        combined = pa.chunked_array([chunked.combine_chunks()], type=chunked.type)
        df[column] = pd.Series(type(array)(combined, dtype=array.dtype), index=df.index, name=column)


def _use_all_cores_for_reading() -> None:
    """pyarrow sizes its reader pool from OMP_NUM_THREADS, which the worker sets to 1 for model code;
    parsing runs before any model, so let it use every core (it halves the read time on two)."""
    import os

    import pyarrow

    cores = os.cpu_count() or 1
    if pyarrow.cpu_count() < cores:
        pyarrow.set_cpu_count(cores)


def _parse_csv(path: Path, sep: str):
    """The file as a pyarrow Table, with pandas' defaults (NA strings become missing)."""
    import pyarrow.csv as pacsv

    _use_all_cores_for_reading()
    return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=sep),
                          convert_options=pacsv.ConvertOptions(strings_can_be_null=True))


# Parses started ahead of time by parse_ahead(), keyed by file identity; read_table() collects them.
_AHEAD: dict[tuple, dict] = {}


def _file_key(path: Path, sep: str) -> tuple | None:
    try:
        stat = Path(path).stat()
        return (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, sep)
    except OSError:
        return None


def parse_ahead(paths) -> None:
    """Start parsing the CSV/TSV files among `paths` with pyarrow on a background thread.

    The worker calls this as soon as it knows the project's files, so that parsing (C++ threads that
    release the GIL) overlaps with importing pandas and the check modules: about 0.3 s on the
    1,000,000-row benchmark. read_table() then takes the parsed table; anything that went wrong is
    parsed again there, with the usual messages. Files that would be sampled are left alone."""
    import threading

    jobs = []
    for path in paths:
        if path is None or Path(path).suffix.lower() not in (".csv", ".tsv"):
            continue
        sep = "\t" if Path(path).suffix.lower() == ".tsv" else ","
        key = _file_key(path, sep)
        if key is None or key[1] == 0 or key[1] > max_read_bytes():
            continue
        entry = {"done": threading.Event()}
        _AHEAD[key] = entry
        jobs.append((Path(path), sep, entry))

    def work():
        for path, sep, entry in jobs:
            try:
                entry["table"] = _parse_csv(path, sep)
            except BaseException:  # noqa: BLE001 - read_table parses again and reports it
                pass
            finally:
                entry["done"].set()

    if jobs:
        threading.Thread(target=work, name="mltriage-read", daemon=True).start()


def _parsed_ahead(path: Path, sep: str):
    key = _file_key(path, sep)
    entry = _AHEAD.pop(key, None) if key is not None else None
    if entry is None:
        return None
    entry["done"].wait()
    return entry.get("table")


def _read_with_pyarrow(path: Path, sep: str):
    """The file via pyarrow, with pandas' defaults (NA strings become missing); None when the header
    repeats a column name (pandas renames those, pyarrow would keep both)."""
    table = _parsed_ahead(path, sep)
    if table is None:
        table = _parse_csv(path, sep)
    if len(set(table.column_names)) != len(table.column_names):
        return None
    # One block per column with self_destruct frees each column as it is copied (peak near the data's size)
    # for long tables; a wide one is consolidated instead: pandas touches every block on each row take and
    # count, 0.1-0.4 s per operation at 10,000 columns against a few ms for one block per dtype.
    df = table.to_pandas(self_destruct=True, split_blocks=table.num_columns < WIDE_TABLE_COLUMNS)
    del table
    return df


WIDE_TABLE_COLUMNS = 256


def _read_delimited(path: Path, sep: str):
    import pandas as pd

    _use_all_cores_for_reading()
    # pyarrow parses fastest; converting its table with self_destruct frees each column as it is
    # copied, which keeps the peak memory near the size of the data. Anything it cannot read (ragged
    # rows, duplicate column names, undecodable bytes) is read again by pandas' C engine, which
    # reports the line.
    try:
        df = _read_with_pyarrow(path, sep)
        if df is None or any(df[c].dtype == object and df[c].map(type).eq(bytes).any() for c in df.columns):
            df = pd.read_csv(path, sep=sep, engine="c", low_memory=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise
    except Exception:
        df = pd.read_csv(path, sep=sep, engine="c", low_memory=False)
    if len(df.columns) == 1 and len(df) > 0:
        other = "\t" if sep == "," else ","
        header = str(df.columns[0])
        for candidate in (other, ";", "|"):
            if candidate in header:
                raise ProjectError(
                    f"{path}: the file reads as a single column '{header[:60]}'; it looks separated by "
                    f"{candidate!r}, not {sep!r}. Save it with the separator its extension implies "
                    f"(.csv: comma, .tsv: tab).")
    return df


def _read_npz(path: Path):
    import numpy as np
    import pandas as pd

    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ProjectError(f"{path}: could not be read as .npz ({exc}).") from None
    columns, skipped = {}, {}
    with archive:
        for name in archive.files:
            try:
                array = archive[name]
            except ValueError:
                raise ProjectError(
                    f"{path}: array '{name}' holds Python objects, which can only be loaded by unpickling. "
                    f"mltriage never unpickles data (it can run arbitrary code). Save numeric or string "
                    f"arrays instead (e.g. np.savez with a float or '<U' dtype).") from None
            if array.dtype.names is not None or array.dtype.kind in "cVO":
                skipped[name] = ("a structured array" if array.dtype.names is not None else
                                 f"{array.dtype} values")  # complex, raw bytes: no check reads them
                continue
            if array.ndim == 2 and name == "X":
                for j in range(array.shape[1]):
                    columns[f"x{j}"] = array[:, j]
            elif array.ndim == 1:
                columns[name] = array
            else:
                raise ProjectError(f"{path}: array '{name}' has shape {array.shape}. Use one 1-D array per "
                                   f"column, or a 2-D array named 'X' beside the target array.")
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ProjectError(f"{path}: arrays have different lengths {lengths}; every column needs one value per row.")
    df = pd.DataFrame(columns)
    if skipped:
        df.attrs["mltriage_dropped"] = skipped
    return df


def parquet_folder_files(folder: Path) -> list[Path]:
    """The Parquet files of a dataset folder (hive partitions included), in path order: the row order."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".parquet", ".pq") and p.is_file())


def data_bytes(path: Path) -> int:
    """Bytes on disk of a split: the file, or every Parquet file of a dataset folder."""
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in parquet_folder_files(path))
    return path.stat().st_size


def _read_parquet_folder(folder: Path, what: str):
    """A folder of Parquet files as one table (pyarrow.dataset; hive partition folders become columns),
    whole while it fits under max_read_bytes(), else a seeded sample of rows as for a large file."""
    import pyarrow.dataset as pads

    files = parquet_folder_files(folder)
    if not files:
        raise ProjectError(f"{folder}: {what} is a folder without .parquet files. Point it at a data file or a "
                           f"folder of Parquet files.")
    size = data_bytes(folder)
    try:
        hive = any("=" in part for f in files for part in f.relative_to(folder).parts[:-1])
        dataset = pads.dataset([str(f) for f in files], format="parquet",
                               partitioning=pads.partitioning(flavor="hive") if hive else None,
                               partition_base_dir=str(folder) if hive else None)
        _use_all_cores_for_reading()
        if size <= max_read_bytes():
            return dataset.to_table().to_pandas()
        return _sample_batches(dataset.to_batches(batch_size=65536), folder, size)
    except ProjectError:
        raise
    except Exception as exc:  # pyarrow raises many types; the message is what matters
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ProjectError(f"{folder}: {what} (a Parquet folder) could not be read: {message}. Check that every "
                           f"file is complete and that they share one schema.") from None


def _read_sampled(path: Path, suffix: str, size: int):
    """Stream the file in record batches and keep each row with probability limit/size (seeded)."""
    if suffix in (".csv", ".tsv"):
        import pyarrow.csv as pacsv

        reader = pacsv.open_csv(path, parse_options=pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ","),
                                read_options=pacsv.ReadOptions(block_size=16 << 20))
        batches_iter = iter(reader)
    else:
        import pyarrow.parquet as pq

        batches_iter = pq.ParquetFile(path).iter_batches(batch_size=65536)
    return _sample_batches(batches_iter, path, size)


def _sample_batches(batches_iter, path: Path, size: int):
    """Keep each row of the record batches with probability limit/size (seeded); file order kept."""
    import numpy as np
    import pyarrow as pa

    fraction = max_read_bytes() / size
    rng = np.random.default_rng(SAMPLE_SEED)
    kept, total = [], 0
    for batch in batches_iter:
        total += batch.num_rows
        kept.append(batch.filter(pa.array(rng.random(batch.num_rows) < fraction)))
    df = pa.Table.from_batches(kept).to_pandas() if kept else None
    if df is None or len(df) == 0:
        raise ProjectError(f"{path}: sampling kept no rows; the file may be empty.")
    df.attrs["mltriage_sample"] = {"rows_in_file": int(total), "rows_kept": int(len(df)),
                                   "file_mb": round(size / 2**20, 1)}
    return df

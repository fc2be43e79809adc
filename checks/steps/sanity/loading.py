"""sanity.data_loads: every split loads with the columns and column types of train; for a tensor project
(DESIGN §3b) every split's items are (x, y) pairs with the input structure, dtypes and shapes of train."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, fail, info, passed, warn
from ...wording import cut_list


def _dtype_family(dtype) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "text"


@check("sanity.data_loads", title="Every split loads with the same columns and types")
def data_loads(ctx: RunContext):
    if ctx.is_tensor:
        return _tensor_splits_verdict(_measure_tensor_splits(ctx))
    train = ctx.train
    rows = {name: len(df) for name, df in ctx.splits.items()}
    evidence = {"rows": rows, "columns": len(train.columns)}
    missing, extra, retyped = {}, {}, {}
    for name, df in ctx.splits.items():
        if name == "train":
            continue
        lacking = [c for c in train.columns if c not in df.columns]
        added = [c for c in df.columns if c not in train.columns]
        if lacking:
            missing[name] = lacking
        if added:
            extra[name] = added
        # int vs float is the same kind of column (pandas turns ints with NaN into floats);
        # numbers vs strings is a real difference: the column parses differently in that split.
        changed = {c: f"{train[c].dtype} -> {df[c].dtype}" for c in train.columns
                   if c in df.columns and _dtype_family(train[c].dtype) != _dtype_family(df[c].dtype)}
        if changed:
            retyped[name] = changed
    holdout = (f" The validation split was held out from train ({int(100 * 0.2)}%, "
               f"{'stratified, ' if ctx.is_classification else ''}seed {ctx.seed}) because [data] valid "
               f"is not set.") if ctx.valid_is_holdout else ""
    evidence.update({"valid_held_out": ctx.valid_is_holdout, "missing_columns": missing,
                     "extra_columns": extra, "changed_types": retyped})
    needed = set(ctx.feature_columns) | {ctx.target}
    lacking_needed = {k: [c for c in v if c in needed] for k, v in missing.items()}
    lacking_needed = {k: v for k, v in lacking_needed.items() if v}
    if lacking_needed:
        split, cols = next(iter(lacking_needed.items()))
        return fail(f"the {split} split lacks {len(cols)} feature column(s) that train has",
                    detail=f"Columns missing from {split}: {cut_list(cols, 20)}.{holdout}",
                    fix="Export every split with the same columns, from the same code path.",
                    evidence=evidence)
    retyped_needed = {k: {c: t for c, t in v.items() if c in needed} for k, v in retyped.items()}
    retyped_needed = {k: v for k, v in retyped_needed.items() if v}
    if retyped_needed:
        split, cols = next(iter(retyped_needed.items()))
        listing = cut_list([f"{c}: {t}" for c, t in cols.items()], 10, "; ")
        return warn(f"{len(cols)} column(s) have a different type in {split} than in train",
                    detail=f"Type changes (train -> {split}): {listing}. A column that is numeric in one split "
                           f"and text in another usually holds stray strings ('n/a', '1,000') in one file.{holdout}",
                    fix="Find the values that do not parse (e.g. pd.to_numeric(col, errors='coerce').isna()) "
                        "and clean them at export.",
                    evidence=evidence)
    sizes = ", ".join(f"{k} {v:,}" for k, v in rows.items())
    sampled = {name: df.attrs["mltriage_sample"] for name, df in ctx.raw_splits.items()
               if "mltriage_sample" in df.attrs}
    if sampled:
        evidence["sampled"] = sampled
        listing = "; ".join(f"{k}: {v['rows_kept']:,} of {v['rows_in_file']:,} rows ({v['file_mb']:,} MB file)"
                            for k, v in sampled.items())
        return info(f"large file(s) sampled: {listing}",
                    detail=f"Files above the read limit are streamed and a seeded random sample of rows is kept "
                           f"so memory stays bounded. Every check in this run saw the sample.{holdout}",
                    fix="Raise MLTRIAGE_MAX_READ_MB to read more, or point the project at a smaller extract.",
                    evidence=evidence)
    if ctx.valid_is_holdout:
        return info(f"all splits load ({sizes}); valid was held out from train",
                    detail=holdout.strip(), evidence=evidence,
                    fix="Set [data] valid to your real validation file so results match your own numbers.")
    return passed(f"all splits load with the same columns ({sizes})", evidence=evidence)


# ---- tensor projects ----------------------------------------------------------------------------

# Items read per split to tell fixed-shape inputs (images) from variable-length ones (token sequences).
SHAPE_PROBE_ITEMS = 8


@dataclass
class SplitItems:
    """What the first items of one tensor split are: input names, dtypes, shapes, and the target."""

    name: str
    items: int                                  # len(Dataset)
    source: str
    dtypes: dict[str, str]                      # input name -> dtype of item 0
    shapes: dict[str, list[list[int]]]          # input name -> shapes of the first items
    target: str                                 # "class", "value" or "sequence"
    target_dtype: str

    def fixed(self, name: str) -> bool:
        """Whether every probed item has the same shape for this input."""
        return len({tuple(s) for s in self.shapes.get(name, [])}) <= 1


@dataclass
class TensorSplits:
    splits: dict[str, SplitItems]
    valid_held_out: bool
    seed: int
    problems: list[tuple[str, str]] = field(default_factory=list)   # (split, what differs from train)


def _target_description(y) -> tuple[str, str]:
    from ...engine.inputs import label_value

    value = label_value(y)
    dtype = str(getattr(y, "dtype", type(y).__name__)).replace("torch.", "")
    if value is None:
        return "sequence", dtype
    return ("class" if isinstance(value, (bool, int)) else "value"), dtype


def _read_split(split) -> SplitItems:
    from ...engine.inputs import input_tensors

    x0, y0 = split.item(0)
    shapes: dict[str, list[list[int]]] = {}
    for _, x, _ in split.iter_items(range(min(SHAPE_PROBE_ITEMS, len(split)))):
        for name, t in input_tensors(x):
            shapes.setdefault(name, []).append(list(t.shape))
    target, target_dtype = _target_description(y0)
    return SplitItems(name=split.name, items=len(split), source=split.source,
                      dtypes={n: str(t.dtype).replace("torch.", "") for n, t in input_tensors(x0)},
                      shapes=shapes, target=target, target_dtype=target_dtype)


def _differences(train: SplitItems, other: SplitItems) -> list[str]:
    """How another split's items differ from train's in what the model and the loss would notice."""
    out = []
    if set(train.dtypes) != set(other.dtypes):
        out.append(f"inputs {sorted(other.dtypes)} instead of {sorted(train.dtypes)}")
    for name in train.dtypes:
        if name not in other.dtypes:
            continue
        if other.dtypes[name] != train.dtypes[name]:
            out.append(f"{name} is {other.dtypes[name]}, train's is {train.dtypes[name]}")
        t_shape, o_shape = train.shapes[name][0], other.shapes[name][0]
        if len(t_shape) != len(o_shape):
            out.append(f"{name} has {len(o_shape)} dimensions {tuple(o_shape)}, train's {len(t_shape)} "
                       f"{tuple(t_shape)}")
        elif train.fixed(name) and other.fixed(name) and t_shape != o_shape:
            out.append(f"{name} has shape {tuple(o_shape)}, train's {tuple(t_shape)}")
    if other.target != train.target:
        out.append(f"targets are {other.target} labels, train's are {train.target} labels")
    return out


def _measure_tensor_splits(ctx: RunContext) -> TensorSplits:
    splits = {name: _read_split(s) for name, s in ctx.tensor_splits.items()}
    m = TensorSplits(splits=splits, valid_held_out=ctx.valid_is_holdout, seed=ctx.seed)
    for name, items in splits.items():
        if name != "train":
            m.problems += [(name, d) for d in _differences(splits["train"], items)]
    return m


def _tensor_splits_verdict(m: TensorSplits) -> Finding:
    train = m.splits["train"]
    evidence = {"items": {k: s.items for k, s in m.splits.items()}, "valid_held_out": m.valid_held_out,
                "inputs": {k: {n: {"dtype": s.dtypes[n], "shape": s.shapes[n][0],
                                   "fixed_shape": s.fixed(n)} for n in s.dtypes} for k, s in m.splits.items()},
                "target": {k: {"kind": s.target, "dtype": s.target_dtype} for k, s in m.splits.items()},
                "differences": [f"{k}: {d}" for k, d in m.problems]}
    sizes = ", ".join(f"{k} {s.items:,}" for k, s in m.splits.items())
    structure = "; ".join(f"{n} {d} {tuple(train.shapes[n][0])}" + ("" if train.fixed(n) else " (varies)")
                          for n, d in train.dtypes.items())
    holdout = (f" The validation split was held out from train (20%, seed {m.seed}) because the Dataset "
               f"has no \"valid\" split.") if m.valid_held_out else ""
    if m.problems:
        split, first = m.problems[0]
        return fail(f"the {split} items differ from train's: {first}",
                    detail=f"Train items: {structure}, {train.target} targets. Differences: "
                           f"{cut_list([f'{k}: {d}' for k, d in m.problems], 10, '; ')}. A model built and "
                           f"trained on train's items fails or silently misreads the others.{holdout}",
                    fix="Build every split with the same Dataset class and transforms (only augmentation may "
                        "differ), returning the same dtypes and shapes.", evidence=evidence)
    if m.valid_held_out:
        return info(f"all splits load ({sizes}); valid was held out from train", detail=holdout.strip(),
                    fix="Return a \"valid\" Dataset from make_dataset so results match your own numbers.",
                    evidence=evidence)
    return passed(f"all splits load as (x, y) items ({sizes}): {structure}; {train.target} targets",
                  evidence=evidence)

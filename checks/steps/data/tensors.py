"""Data checks of tensor projects (DESIGN §3b): token ids, image quality, augmentation, and the tensor
versions of missing values, scale, duplicates and split overlap (registered as the tensor variants of
those checks: the engine runs them instead of the table functions when ctx.is_tensor). data.token_ids lives
in tokens.py.

Every split is read once, item by item (`split_scan`): content hashes, labels and streaming statistics.
Memory grows with the hash table only. Before each read the random generators are set to one fixed seed,
so a random train transform maps equal images to equal tensors and duplicates stay visible.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field

from ...analyses.tensor_stats import np

from ...analyses.image_quality import IMAGE_SAMPLE, image_quality_of_split, sample_indices
from ...analyses.rowkeys import item_duplicate_columns, item_overlap_columns
from ...analyses.tensor_stats import (StreamingStats, channel_layout_verdict, count_duplicates, count_overlap,
                                      measure_channel_layout, named_arrays, as_numpy, is_float_array)
from ...engine.analysis import analysis
from ...engine.context import RunContext
from ...engine.inputs import content_hash, label_value
from ...engine.registry import check, tensor_variant
from ...findings import Finding, fail, info, passed, warn
from ...wording import cut_list
from ._common import stack_rows

SCAN_CHUNK = 256             # items stacked per statistics update


@contextlib.contextmanager
def preserved_rng():
    """Leave torch's, numpy's and Python's global generators as they were: other checks rely on them."""
    import random

    import torch

    states = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    try:
        yield
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


def seed_all(seed: int, cpu_only: bool = False) -> None:
    """Seed torch, numpy and Python's generators. cpu_only seeds torch's CPU generator alone, ~50x faster
    than torch.manual_seed (which records a stack trace for lazy device seeding): for per-item reads,
    where transforms draw from the CPU generator."""
    import random

    import torch

    if cpu_only:
        torch.default_generator.manual_seed(seed)
    else:
        torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# --- one pass over a split -------------------------------------------------------------------------
@dataclass
class SplitScan:
    items: int
    hashes: list[bytes]
    labels: list                                   # scalar label per item (None: sequence or unknown)
    stats: StreamingStats
    nonfinite_items: list[int] = field(default_factory=list)   # first items holding NaN/inf
    nonfinite_count: int = 0                                    # items holding NaN/inf
    nonfinite_all: list[int] = field(default_factory=list)      # every item holding NaN/inf (the finding's rows)
    # input name -> [(items, min, max)] arrays per chunk of each integer input (data.token_ids' rows)
    int_ranges: dict = field(default_factory=dict)


def _item_int_ranges(ranges: dict, batch: dict, first: int) -> None:
    """Add the items (from `first` on), mins and maxes of every integer input of a stacked batch to `ranges`."""
    for n, a in batch.items():
        if a.dtype.kind in "iu" and a.size:
            flat = a.reshape(len(a), -1)
            ranges.setdefault(n, []).append((np.arange(first, first + len(a)), flat.min(axis=1), flat.max(axis=1)))


def _flush(stats: StreamingStats, chunk: list, ranges: dict | None = None, first: int = 0) -> None:
    """Stack a chunk of inputs into one batch when their shapes agree (much faster), else item by item."""
    if not chunk:
        return
    tensors = [dict(named_arrays(x)) for x in chunk]
    names = list(tensors[0])
    same = all(list(t) == names and all(t[n].shape == tensors[0][n].shape for n in names) for t in tensors)
    batches = [{n: np.stack([as_numpy(t[n]) for t in tensors]) for n in names}] if same else \
        [{n: as_numpy(v)[None] for n, v in t.items()} for t in tensors]
    for k, batch in enumerate(batches):
        stats.update(batch)
        if ranges is not None:
            _item_int_ranges(ranges, batch, first + (0 if same else k))
    chunk.clear()


def _has_nonfinite(x) -> bool:
    for _, t in named_arrays(x):
        a = as_numpy(t)
        if is_float_array(a) and not np.isfinite(a).all():
            return True
    return False


@analysis
def split_scan(ctx: RunContext, split: str) -> SplitScan:
    """Hashes, labels and statistics of every item of a split (one read of each item)."""
    s = ctx.tensor_split(split)
    hashes, labels, chunk, stats = [], [], [], StreamingStats()
    scan = SplitScan(items=len(s), hashes=hashes, labels=labels, stats=stats)
    with preserved_rng():
        for i in range(len(s)):
            seed_all(ctx.seed, cpu_only=True)   # the same seed for every item: random transforms map equal inputs alike
            x, y = s.item(i)
            hashes.append(content_hash(x))
            labels.append(label_value(y))
            if _has_nonfinite(x):
                scan.nonfinite_count += 1
                scan.nonfinite_all.append(i)
                if len(scan.nonfinite_items) < 5:
                    scan.nonfinite_items.append(i)
            chunk.append(x)
            if len(chunk) >= SCAN_CHUNK:
                _flush(stats, chunk, scan.int_ranges, i + 1 - len(chunk))
        _flush(stats, chunk, scan.int_ranges, len(s) - len(chunk))
    return scan


def _scans(ctx: RunContext) -> dict[str, SplitScan]:
    return {name: split_scan(ctx, name) for name in ctx.tensor_splits}


def _item_rows(ctx: RunContext, columns_of):
    """A row table over the splits' items: columns_of(ctx, split, scan) gives one split's columns."""
    parts = [(name, columns_of(ctx, name, sc)) for name, sc in _scans(ctx).items()]
    return stack_rows([{"position": c["position"], "split": [name] * len(c["position"]), **c}
                       for name, c in parts if c and c["position"]])


def _rows_of_items(columns_of):
    """Decorate a tensor check: its non-pass finding carries the items columns_of names (issue 18)."""
    def wrap(fn):
        def run(ctx: RunContext) -> Finding:
            finding = fn(ctx)
            if finding.status != "pass":
                finding.rows = _item_rows(ctx, columns_of)
            return finding
        return functools.wraps(fn)(run)
    return wrap


# --- missing values --------------------------------------------------------------------------------
@tensor_variant("data.missing_values")
@_rows_of_items(lambda ctx, name, sc: {"position": sc.nonfinite_all, "has_nan_or_inf": [True] * len(sc.nonfinite_all)})
def tensor_missing_values(ctx: RunContext) -> Finding:
    """NaN/inf in the float inputs of any split (data.missing_values on a tensor project)."""
    scans = _scans(ctx)
    bad = {name: sc.nonfinite_count for name, sc in scans.items() if sc.nonfinite_count}
    items = {name: sc.items for name, sc in scans.items()}
    floats = sorted({n for sc in scans.values() for n in sc.stats.floats})
    evidence = {"items": items, "items_with_nan_or_inf": bad, "float_inputs": floats,
                "examples": {name: sc.nonfinite_items for name, sc in scans.items() if sc.nonfinite_items}}
    if bad:
        per_input = {name: {n: int(st.nan.sum()) + int(st.inf.sum()) for n, st in sc.stats.floats.items()
                            if st.nonfinite} for name, sc in scans.items()}
        evidence["values_per_input"] = {k: v for k, v in per_input.items() if v}
        listing = ", ".join(f"{name}: {n:,} of {items[name]:,}" for name, n in bad.items())
        return fail(f"{sum(bad.values()):,} item(s) hold missing (not-a-number) or infinite values",
                    detail=f"Items with a non-finite input value per split: {listing} (first items: "
                           f"{evidence['examples']}). One not-a-number input in a batch makes the loss and every gradient not-a-number.",
                    fix="Find where the Dataset produces them (a division by a zero std, a log of 0, a corrupt "
                        "file) and fix or drop those items; torch.nan_to_num hides the cause.", evidence=evidence)
    if not floats:
        return passed("inputs are integer ids or categories: no missing values possible", evidence=evidence)
    return passed(f"no missing or infinite values in the float inputs of {sum(items.values()):,} items",
                  evidence=evidence)


# --- scale, constant channels, channel layout --------------------------------------------------------
# Networks are initialised for inputs of about unit scale (LeCun et al. 1998, "Efficient BackProp":
# standardise inputs; Glorot & Bengio 2010 and He et al. 2015 derive their init for unit-variance
# inputs). Standardised data rarely leaves |x| < 20 or a std of 10; raw 0-255 pixels have a std of ~60-80.
SCALE_MAX_ABS = 20.0
SCALE_MAX_STD = 10.0


@dataclass
class ScaleMeasure:
    per_split: dict[str, dict[str, dict]]        # split -> input -> {mean, std, min, max} per channel
    too_large: list[str]                         # "split input: max |x| ..." entries
    constant: list[str]                          # "split input channel c = value"
    integer_inputs: list[str]
    layout: dict | None = None                   # channel-layout measure of a train batch
    reshaped: bool = False


def _channel_summary(st) -> dict:
    r = lambda a: [round(float(v), 4) for v in a]  # noqa: E731
    return {"mean": r(st.mean), "std": r(st.std), "min": r(st.minimum), "max": r(st.maximum)}


def _scale_issues(split: str, name: str, st) -> tuple[list[str], list[str]]:
    big, const = [], []
    finite = st.count > 0
    max_abs = float(np.max(np.maximum(np.abs(st.minimum[finite]), np.abs(st.maximum[finite])))) if finite.any() else 0.0
    max_std = float(st.std.max()) if st.channels else 0.0
    if max_abs > SCALE_MAX_ABS or max_std > SCALE_MAX_STD:
        big.append(f"{split} {name}: max |x| {max_abs:.4g}, largest channel std {max_std:.4g}")
    for c in np.flatnonzero(finite & (st.maximum == st.minimum)):
        const.append(f"{split} {name}" + (f" channel {c}" if st.channels > 1 else "") + f" = {st.minimum[c]:.4g}")
    return big, const


def _layout_of_train(ctx: RunContext):
    if ctx.modality != "images":
        return None
    s = ctx.tensor_split("train")
    idx = sample_indices(len(s), 256, ctx.seed)
    # a random train transform draws from the global generators: seeded, the batch (and the evidence) is
    # the same on every run, whatever ran before
    ctx.seed_everything()
    xb, _ = next(iter(s.loader(indices=idx, batch_size=len(idx))))
    tensors = [t for _, t in named_arrays(xb)]
    return measure_channel_layout(tensors[0]) if tensors else None


def measure_tensor_scale(ctx: RunContext) -> ScaleMeasure:
    scans = _scans(ctx)
    m = ScaleMeasure(per_split={}, too_large=[], constant=[], integer_inputs=[])
    for split, sc in scans.items():
        m.per_split[split] = {n: _channel_summary(st) for n, st in sc.stats.floats.items()}
        m.integer_inputs += [n for n in sc.stats.integer_inputs if n not in m.integer_inputs]
        for name, st in sc.stats.floats.items():
            big, const = _scale_issues(split, name, st)
            m.too_large += big
            m.constant += const if split == "train" else []
    layout = _layout_of_train(ctx)
    if layout is not None:
        m.layout = {k: round(float(v), 3) for k, v in vars(layout).items()} | {"peak": round(layout.peak, 3)}
        m.reshaped = channel_layout_verdict(layout)
    return m


def _scale_problems(m: ScaleMeasure) -> list[tuple]:
    """(status, title, detail, fix) of each problem found, most severe first."""
    out = []
    if m.too_large:
        out.append(("fail", "inputs reach the network unscaled (raw 0-255 pixels?)",
                    f"{cut_list(m.too_large, 4)}. Above |x| {SCALE_MAX_ABS:g} or a std of {SCALE_MAX_STD:g} the first "
                    f"layer's activations are tens of times what its initialisation assumes: training is slow or "
                    f"diverges.",
                    "Scale in the Dataset's transform: ToTensor() (0-255 -> [0, 1]) and Normalize(mean, std) with "
                    "the train split's per-channel statistics."))
    if m.reshaped:
        c = int(m.layout["channels"])
        out.append(("fail", "image channels look interleaved: channels-last data reshaped instead of permuted",
                    f"Along each row, values {c} apart correlate better ({m.layout['lag_c']:.2f}) than values "
                    f"{c - 1} or {c + 1} apart (peak {m.layout['peak']:+.2f}); in real images correlation only falls "
                    f"with distance. (H, W, C) data viewed as (C, H, W) with reshape/view does exactly this.",
                    "Use x.permute(2, 0, 1) (or np.transpose(x, (2, 0, 1))) instead of reshape/view to go from "
                    "(H, W, C) to (C, H, W); torchvision's ToTensor does it for PIL images."))
    if m.constant:
        out.append(("warn", f"{len(m.constant)} input channel(s) are constant over train",
                    f"{cut_list(m.constant, 5)}. A constant channel carries no information (an alpha channel, a "
                    f"grey image stored as colour, a channel zeroed by a transform).",
                    "Drop the channel, or find the transform that flattens it."))
    return out


def scale_verdict(m: ScaleMeasure) -> Finding:
    evidence = {"per_split": m.per_split, "integer_inputs": m.integer_inputs, "channel_layout": m.layout,
                "thresholds": {"max_abs": SCALE_MAX_ABS, "max_std": SCALE_MAX_STD}}
    problems = _scale_problems(m)
    if problems:
        status, title, detail, fix = problems[0]
        detail += "".join(f" Also: {p[1]}. {p[2]}" for p in problems[1:])
        fix += "".join(f" Also: {p[3]}" for p in problems[1:])
        return (fail if status == "fail" else warn)(title, detail=detail, fix=fix, evidence=evidence)
    if not any(m.per_split.values()):
        return passed("inputs are integer ids or categories: not features to scale",
                      detail=f"Integer inputs ({', '.join(m.integer_inputs)}) index embeddings or categories; "
                             f"their values are not magnitudes.", evidence=evidence)
    note = f"; integer inputs {', '.join(m.integer_inputs)} are ids, not scaled" if m.integer_inputs else ""
    return passed(f"float inputs are on a unit-like scale{note}", evidence=evidence)


@tensor_variant("data.feature_scale")
def tensor_feature_scale(ctx: RunContext) -> Finding:
    """Value scale, constant channels and channel layout of float inputs (data.feature_scale)."""
    return scale_verdict(measure_tensor_scale(ctx))


# --- duplicates and overlap --------------------------------------------------------------------------
# As for tables (steps/data/rows.py): beyond ~1% repeated items deduplication practice (Lee et al. 2022,
# "Deduplicating training data makes language models better") treats the repeats as worth removing; the
# same input with two labels beyond 1% of a split is systematic label noise, not ambiguity.
DUPLICATE_WARN_SHARE = 0.01
CONFLICT_FAIL_SHARE = 0.01


@tensor_variant("data.duplicates")
@_rows_of_items(lambda ctx, name, sc: item_duplicate_columns(sc.hashes, sc.labels if ctx.is_classification else None))
def tensor_duplicates(ctx: RunContext) -> Finding:
    """Exact duplicate items by content hash, and equal inputs with different labels (data.duplicates)."""
    counts = {name: count_duplicates(sc.hashes, sc.labels if ctx.is_classification else None)
              for name, sc in _scans(ctx).items()}
    evidence = {"per_split": {n: {"items": c.items, "duplicates": c.duplicates, "conflicting_label_items": c.conflicts,
                                  "examples": c.examples, "conflict_examples": c.conflict_examples}
                              for n, c in counts.items()},
                "method": "blake2b content hash of each item's input tensors (dtype, shape, bytes)"}
    conflict = {n: c for n, c in counts.items() if c.conflict_share > CONFLICT_FAIL_SHARE}
    if conflict:
        listing = ", ".join(f"{n}: {c.conflicts:,} items in {c.conflict_groups:,} groups ({c.conflict_share:.1%})"
                            for n, c in conflict.items())
        return fail("identical inputs carry different labels",
                    detail=f"{listing}; above {CONFLICT_FAIL_SHARE:.0%} this is label noise the model cannot fit. "
                           f"Examples (item indices sharing one input): "
                           f"{ {n: c.conflict_examples for n, c in conflict.items()} }.",
                    fix="Deduplicate and decide one label per input (or drop the contradicting copies).",
                    evidence=evidence)
    dup = {n: c for n, c in counts.items() if c.duplicate_share > DUPLICATE_WARN_SHARE}
    if dup:
        listing = ", ".join(f"{n}: {c.duplicates:,} of {c.items:,} ({c.duplicate_share:.1%})" for n, c in dup.items())
        return warn(f"{sum(c.duplicates for c in dup.values()):,} items repeat another item exactly",
                    detail=f"Exact copies per split: {listing} (threshold {DUPLICATE_WARN_SHARE:.0%}). Copies "
                           f"over-weight those examples in training and inflate evaluation.",
                    fix="Drop exact copies when building the Dataset (hash the files or arrays).", evidence=evidence)
    total = sum(c.duplicates for c in counts.values())
    if total:
        return info(f"{total:,} exact duplicate item(s), under {DUPLICATE_WARN_SHARE:.0%} per split",
                    evidence=evidence)
    return passed("no exact duplicate inputs", evidence=evidence)


@tensor_variant("data.split_overlap")
@_rows_of_items(lambda ctx, name, sc: None if name == "train" else item_overlap_columns(
    split_scan(ctx, "train").hashes, sc.hashes, split_scan(ctx, "train").labels, sc.labels))
def tensor_split_overlap(ctx: RunContext) -> Finding:
    """Valid/test items whose input is also a train item (data.split_overlap)."""
    scans = _scans(ctx)
    overlaps = {n: count_overlap(scans["train"].hashes, sc.hashes) for n, sc in scans.items() if n != "train"}
    evidence = {"per_split": {n: {"items": o.items, "in_train": o.in_train, "examples": o.pairs}
                              for n, o in overlaps.items()},
                "method": "blake2b content hash of each item's input tensors",
                "valid_is_holdout": ctx.valid_is_holdout}
    shared = {n: o for n, o in overlaps.items() if o.in_train}
    random_train = measure_augmentation(ctx).changed.get("train")
    if shared:
        listing = ", ".join(f"{o.in_train:,} of {o.items:,} {n} items" for n, o in shared.items())
        return fail(f"{listing} also appear in train",
                    detail=f"Identical inputs in train and evaluation make the evaluation measure memory, not "
                           f"generalisation. Example (item, train item) pairs: "
                           f"{ {n: o.pairs for n, o in shared.items()} }.",
                    fix="Split by source before any augmentation or copying, and drop evaluation items whose "
                        "content hash is in train.", evidence=evidence)
    if random_train:
        return info(f"no exact copy of a train item in {', '.join(overlaps)}, but train items are transformed at random",
                    detail="Train items differ between two reads (augmentation), so hashes compare transformed train "
                           "tensors with evaluation tensors: a copied image stays hidden unless the transform left "
                           "it unchanged. Compare the stored files or arrays before the transform to be sure.",
                    evidence=evidence)
    return passed(f"no evaluation item's input appears in train ({', '.join(overlaps)})", evidence=evidence)


# --- image quality (cleanvision) ---------------------------------------------------------------------
# cleanvision's own thresholds flag an image when it is an outlier for its property, so in a clean
# collection a few stray images are flagged. An issue type covering more than 5% of a split is no longer
# stray: it is how the data was made (an export, a camera, a transform) and worth a look.
ISSUE_WARN_SHARE = 0.05


def image_quality_verdict(results: dict) -> Finding:
    evidence = {split: {"images": q.images, "total": q.total, "seconds": round(q.seconds, 2), "counts": q.counts, "cleanvision_counts": q.cleanvision_counts,
                        "examples": q.examples, "near_duplicate_sets": q.duplicate_sets.get("near_duplicates", [])[:5],
                        "source": q.source} for split, q in results.items()}
    evidence["warn_share"] = ISSUE_WARN_SHARE
    judged = [(split, issue, q.share(issue), n) for split, q in results.items()
              for issue, n in q.counts.items() if issue != "exact_duplicates" and n]
    exact = sum(q.counts.get("exact_duplicates", 0) for q in results.values())
    sample = "; ".join(f"{s}: {q.images:,} of {q.total:,} images" for s, q in results.items())
    dup_note = f" {exact} exact duplicates: see data.duplicates." if exact else ""
    listing = ", ".join(f"{split} {issue.replace('_', ' ')} {n} ({share:.1%})" for split, issue, share, n in judged)
    big = [j for j in judged if j[2] > ISSUE_WARN_SHARE]
    if big:
        split, issue, share, _ = max(big, key=lambda j: j[2])
        return warn(f"{share:.0%} of {split} images are {issue.replace('_', ' ')}",
                    detail=f"cleanvision flags: {listing} (examined {sample}; above {ISSUE_WARN_SHARE:.0%} an issue "
                           f"is systematic, not a few stray images).{dup_note}",
                    fix="Look at the example images (evidence): fix the export or transform that makes them, or "
                        "drop them if they carry no signal.", evidence=evidence)
    if judged:
        return info(f"cleanvision flags a few images: {listing}",
                    detail=f"Examined {sample}; each type is under {ISSUE_WARN_SHARE:.0%}.{dup_note}", evidence=evidence)
    return passed("cleanvision finds no dark, light, blurry, low-information, odd-sized or near-duplicate images",
                  detail=f"Examined {sample}.{dup_note}", evidence=evidence)


@check("data.image_quality", title="Image quality (cleanvision)", needs=("images",), tensor=True,
       imports=("cleanvision",))
def image_quality(ctx: RunContext):
    splits = [s for s in ("train", "valid") if s in ctx.tensor_splits]
    return image_quality_verdict({s: image_quality_of_split(ctx, s, IMAGE_SAMPLE) for s in splits})


# --- augmentation ----------------------------------------------------------------------------------------
AUGMENTATION_ITEMS = 16
READ_SEEDS = (101, 202)     # two different seeds: a random transform shows as two different reads


@dataclass
class AugmentationMeasure:
    changed: dict[str, list[int]]          # split -> items whose two reads differ
    read: dict[str, int]                   # split -> items read twice
    flipped: list[int] = field(default_factory=list)   # train items whose second read mirrors the first
    glyph_classes: bool = False


def _two_reads(s, i: int):
    import torch

    reads = []
    for seed in READ_SEEDS:
        seed_all(seed)
        reads.append(s.item(i)[0])
    (a, b) = reads
    same = content_hash(a) == content_hash(b)
    ta, tb = (next(iter(dict(named_arrays(r)).values()), None) for r in reads)
    mirrored = (not same and isinstance(ta, torch.Tensor) and ta.dim() >= 2 and ta.shape == tb.shape
                and torch.equal(torch.flip(ta, dims=[-1]), tb))
    return same, mirrored


def _glyph_classes(names) -> bool:
    """Classes named by single digits or letters: mirrored, a 2 or a b is another glyph or none."""
    return bool(names) and all(isinstance(n, (str, int)) and len(str(n).strip()) == 1 and str(n).strip().isalnum()
                               for n in names)


@analysis
def measure_augmentation(ctx: RunContext) -> AugmentationMeasure:
    m = AugmentationMeasure(changed={}, read={})
    with preserved_rng():
        for split in ctx.tensor_splits:
            s = ctx.tensor_split(split)
            idx = sample_indices(len(s), AUGMENTATION_ITEMS, ctx.seed)
            m.read[split], m.changed[split] = len(idx), []
            for i in idx:
                same, mirrored = _two_reads(s, int(i))
                if not same:
                    m.changed[split].append(int(i))
                if mirrored and split == "train":
                    m.flipped.append(int(i))
    m.glyph_classes = _glyph_classes(ctx.tensor_split("train").class_names)
    return m


def augmentation_verdict(m: AugmentationMeasure) -> Finding:
    evidence = {"changed": m.changed, "read_twice": m.read, "mirrored_train_items": m.flipped,
                "glyph_classes": m.glyph_classes, "seeds": list(READ_SEEDS)}
    evaluation = {s: v for s, v in m.changed.items() if s != "train" and v}
    if evaluation:
        listing = ", ".join(f"{len(v)} of {m.read[s]} {s} items" for s, v in evaluation.items())
        return fail("random transforms at evaluation: the same item differs between two reads",
                    detail=f"Read twice with different seeds, {listing} came back different (items "
                           f"{ {s: v[:5] for s, v in evaluation.items()} }). Evaluation then measures a moving target "
                           f"and predictions are not reproducible.",
                    fix="Give valid/test a deterministic transform (Resize/CenterCrop, ToTensor, Normalize); keep "
                        "Random* transforms in the train transform only.", evidence=evidence)
    train_changed = m.changed.get("train", [])
    if m.flipped and m.glyph_classes:
        return warn("horizontal flips on digit or letter classes",
                    detail=f"Train items {m.flipped[:5]} came back mirrored between two reads, and the classes are "
                           f"single digits or letters: a mirrored glyph is another glyph or none, so the flip "
                           f"teaches labels that are wrong for the flipped images.",
                    fix="Drop RandomHorizontalFlip for glyphs; use small rotations, shifts or elastic distortions.",
                    evidence=evidence)
    if train_changed:
        return info(f"train augmentation is on ({len(train_changed)} of {m.read['train']} items differ between reads)",
                    detail="Evaluation splits read the same twice: their transforms are deterministic.",
                    evidence=evidence)
    return passed("every split reads the same twice: no random transforms", evidence=evidence)


@check("data.augmentation", title="Augmentation and evaluation transforms", needs=("tensor",), tensor=True)
def augmentation(ctx: RunContext):
    return augmentation_verdict(measure_augmentation(ctx))


# --- label issues ----------------------------------------------------------------------------------------
# The same check as on tables: analyses/labels.py gives it, for a tensor project, out-of-fold probabilities
# of a classifier on the project model's penultimate features (a model that can read the modality).
from .labels import label_issues as _label_issues  # noqa: E402  (same step package)

tensor_variant("data.label_issues")(_label_issues)

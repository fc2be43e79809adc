"""Statistics of tensor inputs, computed as a stream of batches (DESIGN §3b data checks).

Pure functions and small accumulators over numpy/torch values; nothing here knows a run context, so
every measure is unit-tested on planted arrays. Memory never grows with the number of items beyond
what a statistic needs by nature: per-channel moments, a histogram of sequence lengths.

- `ChannelStats`: count, mean, std (Chan et al. parallel merging), min, max, NaN and inf counts per
  channel of float batches (N, C, H, W), or one channel for any other shape.
- `measure_channel_layout` / `channel_layout_verdict`: channels-last data reshaped (not permuted) to
  (N, C, H, W), told apart from correctly laid out images by neighbour correlations along W.
Content hashes of items (exact duplicates, overlap) are engine/inputs.content_hash, kept per split.
- `TokenStats`, `token_ids_of`, `infer_pad_id`: ids range, padding and truncation of token batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator



class _LazyNumpy:
    """numpy, imported on first use: the step modules that import these functions are loaded when the app
    starts (for the check titles), and the app must start without numpy (tests/test_app.py)."""

    def __getattr__(self, name: str):
        import numpy

        return getattr(numpy, name)


np = _LazyNumpy()

IMAGE_CHANNELS = (1, 3, 4)


# --- walking an item or a batch --------------------------------------------------------------------
def named_arrays(x: Any, prefix: str = "x") -> Iterator[tuple[str, Any]]:
    """(name, tensor or array) for every tensor in x: a tensor, a tuple/list of them, or a dict of them.
    Names follow DESIGN §3b's calling convention ("x", "x[0]", "input_ids"); other values are skipped."""
    if isinstance(x, dict):
        for key, value in x.items():
            yield from named_arrays(value, str(key))
    elif isinstance(x, (tuple, list)):
        for i, value in enumerate(x):
            yield from named_arrays(value, f"{prefix}[{i}]")
    elif hasattr(x, "dtype") and hasattr(x, "shape"):
        yield prefix, x
    elif isinstance(x, (int, float, bool, np.number)):
        yield prefix, np.asarray(x)


def as_numpy(t) -> np.ndarray:
    """A CPU numpy view of a tensor or array (sparse and non-contiguous tensors copied)."""
    if hasattr(t, "detach"):
        t = t.detach()
        if getattr(t, "is_sparse", False):
            t = t.to_dense()
        return t.cpu().contiguous().numpy()
    return np.asarray(t)


def is_float_array(a: np.ndarray) -> bool:
    return a.dtype.kind in "fc" or str(a.dtype) == "bfloat16"


def is_integer_array(a: np.ndarray) -> bool:
    return a.dtype.kind in "iub"


# --- per-channel statistics ------------------------------------------------------------------------
@dataclass
class ChannelStats:
    """Moments of a float input per channel, mergeable across batches.

    The mean and the sum of squared deviations (m2) are merged with the pairwise update of Chan, Golub &
    LeVeque (1979), which stays accurate where the naive sum of squares loses every digit (values of
    ~1e4 with a spread of ~1, e.g. raw pixel offsets)."""

    count: np.ndarray                       # finite values per channel
    mean: np.ndarray
    m2: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    nan: np.ndarray
    inf: np.ndarray

    @classmethod
    def empty(cls, channels: int) -> "ChannelStats":
        zeros = np.zeros(channels)
        return cls(np.zeros(channels, dtype=np.int64), zeros.copy(), zeros.copy(), np.full(channels, np.inf),
                   np.full(channels, -np.inf), np.zeros(channels, dtype=np.int64), np.zeros(channels, dtype=np.int64))

    @property
    def channels(self) -> int:
        return len(self.count)

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per channel (0 where a channel has no finite value)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, np.sqrt(np.maximum(self.m2, 0) / np.maximum(self.count, 1)), 0.0)

    @property
    def nonfinite(self) -> int:
        return int(self.nan.sum() + self.inf.sum())

    def merge(self, other: "ChannelStats") -> "ChannelStats":
        if other.channels != self.channels:
            raise ValueError(f"cannot merge statistics of {self.channels} and {other.channels} channels")
        n = self.count + other.count
        safe = np.maximum(n, 1)
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / safe
        m2 = self.m2 + other.m2 + delta ** 2 * self.count * other.count / safe
        return ChannelStats(n, np.where(n > 0, mean, 0.0), np.where(n > 0, m2, 0.0),
                            np.minimum(self.minimum, other.minimum), np.maximum(self.maximum, other.maximum),
                            self.nan + other.nan, self.inf + other.inf)


def channel_axis(shape: tuple[int, ...]) -> int | None:
    """The channel axis of a batch: 1 for (N, C, H, W), None (one channel) for any other shape."""
    return 1 if len(shape) == 4 else None


def batch_channel_stats(batch) -> ChannelStats:
    """ChannelStats of one float batch."""
    a = as_numpy(batch)
    if not is_float_array(a):
        raise ValueError(f"channel statistics need a float batch, got dtype {a.dtype}")
    a = a.astype(np.float64, copy=False)
    axis = channel_axis(a.shape)
    planes = np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1) if axis is not None else a.reshape(1, -1)
    nan, inf = np.isnan(planes), np.isinf(planes)
    finite = ~(nan | inf)
    count = finite.sum(axis=1)
    clean = np.where(finite, planes, 0.0)
    safe = np.maximum(count, 1)
    mean = clean.sum(axis=1) / safe
    m2 = (np.where(finite, planes - mean[:, None], 0.0) ** 2).sum(axis=1)
    minimum = np.where(finite, planes, np.inf).min(axis=1) if planes.shape[1] else np.full(len(planes), np.inf)
    maximum = np.where(finite, planes, -np.inf).max(axis=1) if planes.shape[1] else np.full(len(planes), -np.inf)
    return ChannelStats(count.astype(np.int64), mean, m2, minimum, maximum,
                        nan.sum(axis=1).astype(np.int64), inf.sum(axis=1).astype(np.int64))


class StreamingStats:
    """ChannelStats per input name ("x", "x[0]", "input_ids", ...) over a stream of batches, plus the
    dtype seen for each name. Integer inputs are counted, never given moments: they are ids or
    categories (DESIGN §3b), not features with a scale."""

    def __init__(self) -> None:
        self.floats: dict[str, ChannelStats] = {}
        self.dtypes: dict[str, str] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.int_range: dict[str, tuple[int, int]] = {}      # integer inputs: (min, max) seen
        self.batches = 0

    def update(self, xb) -> None:
        self.batches += 1
        for name, t in named_arrays(xb):
            a = as_numpy(t)
            self.dtypes.setdefault(name, str(a.dtype))
            self.shapes.setdefault(name, tuple(a.shape))
            if is_integer_array(a) and a.size:
                lo, hi = self.int_range.get(name, (int(a.min()), int(a.max())))
                self.int_range[name] = (min(lo, int(a.min())), max(hi, int(a.max())))
            if not is_float_array(a) or a.ndim == 0:
                continue
            st = batch_channel_stats(a)
            prev = self.floats.get(name)
            if prev is not None and prev.channels != st.channels:   # layouts differ between batches:
                prev, st = _pooled(prev), _pooled(st)                 # judge one pooled channel
            self.floats[name] = st if prev is None else prev.merge(st)

    @property
    def integer_inputs(self) -> list[str]:
        return [n for n, d in self.dtypes.items() if n not in self.floats and np.dtype(d).kind in "iub"]


def _pooled(st: ChannelStats) -> ChannelStats:
    """Several channels' statistics merged into one channel."""
    out = ChannelStats.empty(1)
    for c in range(st.channels):
        out = out.merge(ChannelStats(st.count[c:c + 1], st.mean[c:c + 1], st.m2[c:c + 1], st.minimum[c:c + 1],
                                     st.maximum[c:c + 1], st.nan[c:c + 1], st.inf[c:c + 1]))
    return out


# --- channel layout --------------------------------------------------------------------------------
# Images sampled for the layout measure: correlations from ~1e5 neighbour pairs have a standard error
# far below the margin used in the verdict.
LAYOUT_SAMPLE = 256
# Natural images have a power spectrum falling as ~1/f^2 (Field 1987, JOSA A 4:2379; van der Schaaf &
# van Hateren 1996), so the correlation of two pixels falls monotonically with their distance along a
# row: the value C pixels away never correlates better than the one C-1 away. Channels-last data
# reshaped (not permuted) into (N, C, H, W) puts the same channel of the next pixel exactly C positions
# away and other channels in between, which makes the correlogram peak at lag C (and 2C). We measure
# that peak: corr(lag C) - max(corr(lag C-1), corr(lag C+1)); it is negative for correctly laid out
# images. On colour-tinted digits upsampled to 32x32 it is -0.15 permuted and +0.11 (nearest) to +0.18
# (bilinear) reshaped; 0.05 sits between with room for sampling noise (~1e5 pairs: standard error
# < 0.01). The lag-C correlation must also be substantial (> 0.3), else there is no spatial structure
# to judge (noise inputs). Grey images stored as three equal channels cannot show the peak and stay quiet.
LAYOUT_MARGIN = 0.05
LAYOUT_MIN_CORRELATION = 0.3


@dataclass
class LayoutMeasure:
    channels: int
    lag1: float              # correlation of values 1 apart along W
    lag_c: float             # ... C apart
    lag_before: float        # ... C-1 apart
    lag_after: float         # ... C+1 apart
    images: int

    @property
    def peak(self) -> float:
        """How far the correlogram peaks at lag C: > 0 only for interleaved channels."""
        return self.lag_c - max(self.lag_before, self.lag_after)


def _lag_correlation(planes: np.ndarray, lag: int) -> float:
    a, b = planes[..., :-lag].ravel(), planes[..., lag:].ravel()
    sa, sb = a.std(), b.std()
    if sa == 0 or sb == 0:
        return 0.0
    return float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb))


def measure_channel_layout(batch, max_images: int = LAYOUT_SAMPLE) -> LayoutMeasure | None:
    """Neighbour correlations along W of an image batch (N, C, H, W), C in 3 or 4; None when the batch is
    no such image batch (one channel has no lag to compare, and rows must be longer than 2C)."""
    a = as_numpy(batch)
    if a.ndim != 4 or a.shape[1] not in IMAGE_CHANNELS or a.shape[1] == 1 or a.shape[3] <= 2 * a.shape[1]:
        return None
    a = a[:max_images].astype(np.float64)
    a = a[np.isfinite(a).all(axis=(1, 2, 3))]
    if not len(a):
        return None
    # centre each image plane: the measure is about spatial structure, not brightness differences
    # between images or channels
    planes = a - a.mean(axis=(2, 3), keepdims=True)
    c = a.shape[1]
    return LayoutMeasure(channels=c, lag1=_lag_correlation(planes, 1), lag_c=_lag_correlation(planes, c),
                         lag_before=_lag_correlation(planes, c - 1), lag_after=_lag_correlation(planes, c + 1),
                         images=len(a))


def channel_layout_verdict(m: LayoutMeasure | None) -> bool:
    """True when the batch looks like channels-last data reshaped to (N, C, H, W)."""
    return m is not None and m.lag_c > LAYOUT_MIN_CORRELATION and m.peak > LAYOUT_MARGIN


# --- token ids -------------------------------------------------------------------------------------
def token_ids_of(x):
    """The token-id tensor of an item or a batch: an integer tensor itself, a dict's `input_ids` (or its
    first integer tensor), a tuple's first integer tensor; None when there is none."""
    if isinstance(x, dict) and "input_ids" in x:
        return x["input_ids"]
    for _, t in named_arrays(x):
        if t.ndim >= 1 and is_integer_array(as_numpy(t)) and str(t.dtype) not in ("torch.bool", "bool"):
            return t
    return None


def attention_mask_of(x):
    """A dict batch's `attention_mask` (1 = a real token), else None."""
    return x.get("attention_mask") if isinstance(x, dict) else None


@dataclass
class TokenStats:
    """Ids, padding and lengths over collated batches (rows = sequences)."""

    sequences: int = 0
    positions: int = 0
    pad_positions: int = 0
    min_id: int | None = None
    max_id: int | None = None
    negative_ids: int = 0
    length_counts: dict[int, int] = field(default_factory=dict)   # non-pad length -> sequences

    def update(self, ids, pad_id: int | None = None, mask=None) -> None:
        a = as_numpy(ids).astype(np.int64, copy=False)
        if a.ndim == 1:
            a = a[None, :]
        a = a.reshape(a.shape[0], -1)
        self.sequences += a.shape[0]
        self.positions += a.size
        if a.size:
            self.min_id = int(a.min()) if self.min_id is None else min(self.min_id, int(a.min()))
            self.max_id = int(a.max()) if self.max_id is None else max(self.max_id, int(a.max()))
            self.negative_ids += int((a < 0).sum())
        if mask is not None:
            real = as_numpy(mask).reshape(a.shape).astype(bool)
        elif pad_id is not None:
            real = a != pad_id
        else:
            real = np.ones(a.shape, dtype=bool)
        self.pad_positions += int((~real).sum())
        for length, n in zip(*np.unique(real.sum(axis=1), return_counts=True)):
            self.length_counts[int(length)] = self.length_counts.get(int(length), 0) + int(n)

    @property
    def pad_fraction(self) -> float:
        return self.pad_positions / self.positions if self.positions else 0.0

    @property
    def max_length(self) -> int:
        return max(self.length_counts) if self.length_counts else 0

    @property
    def at_max_share(self) -> float:
        """Share of sequences as long as the longest one: many of them means a length cap cut them."""
        return self.length_counts.get(self.max_length, 0) / self.sequences if self.sequences else 0.0

    @property
    def varying_lengths(self) -> bool:
        return len(self.length_counts) > 1

    def length_percentile(self, q: float) -> int:
        if not self.length_counts:
            return 0
        lengths = np.array(sorted(self.length_counts))
        counts = np.array([self.length_counts[k] for k in lengths])
        cum = np.cumsum(counts) / counts.sum()
        return int(lengths[min(np.searchsorted(cum, q / 100.0), len(lengths) - 1)])


def sequence_length(x) -> int:
    """The number of token ids of one (uncollated) item: the length of its id tensor's last axis."""
    ids = token_ids_of(x)
    return 0 if ids is None or ids.ndim == 0 else int(ids.shape[-1])


def infer_pad_id(collate: Callable, short_item, long_item) -> int | None:
    """The id a collate pads with: collate a short and a long item; the positions of the short item's row
    beyond its own length hold the pad (right padding) or precede it (left padding). None when the
    collate does not pad into a (2, T) id tensor (EmbeddingBag offsets, packed sequences, fixed lengths)
    or the padded positions do not hold one single value."""
    short_ids = as_numpy(token_ids_of(short_item[0] if isinstance(short_item, tuple) else short_item)).ravel()
    batch = collate([short_item, long_item])
    xb = batch[0] if isinstance(batch, (tuple, list)) and len(batch) == 2 else batch
    ids = token_ids_of(xb)
    if ids is None:
        return None
    a = as_numpy(ids)
    if a.ndim != 2 or a.shape[0] != 2 or a.shape[1] <= len(short_ids):
        if a.ndim == 2 and a.shape[1] == 2 and a.shape[0] > len(short_ids):   # batch_first=False layout
            a = a.T
        else:
            return None
    row, n = a[0], len(short_ids)
    for real, rest in ((row[:n], row[n:]), (row[-n:] if n else row[:0], row[:len(row) - n])):
        if np.array_equal(real, short_ids) and len(rest) and (rest == rest[0]).all():
            return int(rest[0])
    return None


# --- duplicates and overlap by content hash --------------------------------------------------------
@dataclass
class DuplicateCounts:
    items: int
    duplicates: int                  # items whose input repeats an earlier item's input exactly
    conflicts: int                   # items whose input also occurs with another label
    conflict_groups: int
    examples: list[list[int]] = field(default_factory=list)   # a few groups of item indices with one input
    conflict_examples: list[list[int]] = field(default_factory=list)

    @property
    def duplicate_share(self) -> float:
        return self.duplicates / self.items if self.items else 0.0

    @property
    def conflict_share(self) -> float:
        return self.conflicts / self.items if self.items else 0.0


def count_duplicates(hashes: list[bytes], labels: list | None, examples: int = 3) -> DuplicateCounts:
    """Exact repeats among items by content hash; with labels (class indices or values, None for
    unknown) also inputs seen with more than one label."""
    groups: dict[bytes, list[int]] = {}
    for i, h in enumerate(hashes):
        groups.setdefault(h, []).append(i)
    repeated = [g for g in groups.values() if len(g) > 1]
    out = DuplicateCounts(items=len(hashes), duplicates=sum(len(g) - 1 for g in repeated), conflicts=0,
                          conflict_groups=0, examples=[g[:4] for g in repeated[:examples]])
    if labels is not None:
        for g in repeated:
            if len({labels[i] for i in g if labels[i] is not None}) > 1:
                out.conflicts += len(g)
                out.conflict_groups += 1
                if len(out.conflict_examples) < examples:
                    out.conflict_examples.append(g[:4])
    return out


@dataclass
class OverlapCounts:
    items: int                       # items of the evaluation split
    in_train: int                    # ... whose input is also a train item's
    pairs: list[tuple[int, int]] = field(default_factory=list)   # (item, train item) examples


def count_overlap(train_hashes: list[bytes], other_hashes: list[bytes], examples: int = 5) -> OverlapCounts:
    first = {}
    for i, h in enumerate(train_hashes):
        first.setdefault(h, i)
    shared = [(i, first[h]) for i, h in enumerate(other_hashes) if h in first]
    return OverlapCounts(items=len(other_hashes), in_train=len(shared), pairs=shared[:examples])


# --- embeddings --------------------------------------------------------------------------------------
@dataclass
class EmbeddingTable:
    name: str
    num_embeddings: int
    padding_idx: int | None
    kind: str                       # "Embedding" | "EmbeddingBag"


def embedding_tables(model) -> list[EmbeddingTable]:
    """The nn.Embedding / nn.EmbeddingBag modules of a torch model, in module order."""
    import torch.nn as nn

    if not isinstance(model, nn.Module):
        return []
    return [EmbeddingTable(name or "(model)", int(m.num_embeddings), getattr(m, "padding_idx", None),
                           type(m).__name__)
            for name, m in model.named_modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))]


def largest_table(tables: list[EmbeddingTable]) -> EmbeddingTable | None:
    """The largest table: the vocabulary when nothing better tells which table reads the token ids
    (position and segment tables are usually far smaller than a vocabulary)."""
    return max(tables, key=lambda t: t.num_embeddings) if tables else None

"""Image quality through cleanvision (DESIGN §3b): dark, light, blurry, low-information, odd aspect
ratio or size, exact and near duplicates. cleanvision is the reference implementation of these
measures; we only feed it images and read its verdicts.

cleanvision is an optional extra: without it every entry point raises SkipCheck naming the install.
Images come as PIL images, converted from (C, H, W) tensors (floats in [0, 1] or 0-255, uint8), or as
the files of an image folder.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from dataclasses import dataclass, field
from typing import Iterable

from .tensor_stats import np

from ..findings import SkipCheck

DEFAULT_ISSUES = ("dark", "light", "blurry", "low_information", "odd_aspect_ratio", "odd_size",
                  "exact_duplicates", "near_duplicates")
DUPLICATE_ISSUES = ("exact_duplicates", "near_duplicates")
# Images per split handed to cleanvision: 2,000 32x32 images take 1-4 s on one core (measured on a
# shared 2-core machine, cleanvision 0.3.7, all default issue types); shares estimated from 2,000
# images are within ~1 percentage point (binomial standard error at 5%: sqrt(0.05*0.95/2000) = 0.5%).
IMAGE_SAMPLE = 2000
# Larger images cost cleanvision time and memory in proportion to their pixels: the sample holds at most
# this many pixels (2,000 images of 96x96), e.g. 367 images of 224x224 (standard error of a 5% share: 1.1
# points), and never fewer than 200 images.
PIXEL_BUDGET = 2000 * 96 * 96
MIN_IMAGES = 200
EXAMPLES_PER_ISSUE = 5
# cleanvision's low-information threshold is absolute (entropy under 3 bits), and sparse grey images such
# as digits and glyphs sit at 2-3.5 bits by nature (measured: 8% of an MNIST-like set flagged, none under
# 1.9 bits). We keep its flag only for images with less than half the entropy of the split's median image:
# nearly blank images relative to their own collection, which is the defect the measure is for.
RELATIVE_TO_MEDIAN = {"low_information": 0.5}
INSTALL_HINT = "pip install 'mltriage[images]'"


def require_cleanvision():
    """The cleanvision module, or SkipCheck saying how to install it."""
    try:
        import cleanvision  # noqa: F401
        from cleanvision import Imagelab
    except ImportError as exc:
        raise SkipCheck(f"image quality needs cleanvision, which is not installed ({exc}): {INSTALL_HINT}") from None
    return Imagelab


# --- tensors to images -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PixelScale:
    """How float values map to 0-255: value * scale + offset, then clipped."""

    scale: float
    offset: float
    note: str


def pixel_scale(first_images: list) -> PixelScale:
    """The float-to-uint8 mapping, chosen once from a few images so that every image is mapped the same
    way (per-image stretching would hide exactly the dark and light images we look for)."""
    arrays = [_as_array(x) for x in first_images]
    floats = [a for a in arrays if a.dtype.kind == "f"]
    if not floats:
        return PixelScale(1.0, 0.0, "uint8 pixels")
    finite = np.concatenate([a[np.isfinite(a)].ravel() for a in floats]) if floats else np.array([0.0])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if lo >= 0 and hi <= 1.0 + 1e-6:
        return PixelScale(255.0, 0.0, "floats in [0, 1]")
    if lo >= 0 and hi <= 255.0 + 1e-3:
        return PixelScale(1.0, 0.0, "floats in 0-255")
    # normalised inputs (mean/std): map the observed range linearly, shared by all images
    span = max(hi - lo, 1e-12)
    return PixelScale(255.0 / span, -lo * 255.0 / span, f"normalised floats in [{lo:.3g}, {hi:.3g}], mapped linearly")


def _as_array(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def tensor_to_pil(x, scale: PixelScale):
    """A PIL image from a (C, H, W) or (H, W) tensor/array, C in 1, 3, 4."""
    from PIL import Image

    a = _as_array(x)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)
    elif a.ndim != 2:
        raise ValueError(f"an image must be (C, H, W) with C in 1, 3, 4 or (H, W); got shape {a.shape}")
    if a.dtype.kind == "f":
        a = np.nan_to_num(a.astype(np.float64) * scale.scale + scale.offset, nan=0.0, posinf=255.0, neginf=0.0)
    a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    image = Image.fromarray(np.ascontiguousarray(a))     # mode from the shape: L, RGB or RGBA
    return image.convert("RGB") if image.mode == "RGBA" else image


# --- running cleanvision ---------------------------------------------------------------------------
@dataclass
class ImageQuality:
    """cleanvision's verdicts on a sample of one split."""

    split: str
    images: int                                   # images examined
    total: int                                    # items in the split
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)          # issue type -> flagged images
    cleanvision_counts: dict[str, int] = field(default_factory=dict)  # before RELATIVE_TO_MEDIAN
    examples: dict[str, list[int]] = field(default_factory=dict)  # issue type -> item indices (worst first)
    duplicate_sets: dict[str, list[list[int]]] = field(default_factory=dict)  # exact/near -> sets of indices
    source: str = ""                              # "files" or how tensors were mapped to pixels

    def share(self, issue: str) -> float:
        return self.counts.get(issue, 0) / self.images if self.images else 0.0

    @property
    def sampled(self) -> bool:
        return self.images < self.total


@contextlib.contextmanager
def _quiet():
    """cleanvision prints progress bars (tqdm, to stderr) and summaries (stdout): keep them off the
    terminal and out of the worker's protocol stream."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _run_imagelab(images=None, filepaths=None, issue_types: Iterable[str] = DEFAULT_ISSUES):
    """(issues DataFrame, info dict) of cleanvision on PIL images or on files; rows in input order."""
    Imagelab = require_cleanvision()
    with _quiet():
        if filepaths is not None:
            lab = Imagelab(filepaths=[str(p) for p in filepaths], verbose=False)
        else:
            lab = Imagelab(torchvision_dataset=[(im,) for im in images], verbose=False)
        # one process: the checks run inside mltriage's worker, which must not fork a pool
        lab.find_issues({k: {} for k in issue_types}, n_jobs=1, verbose=False)
    return lab.issues, lab.info


def _row_positions(issues, filepaths) -> np.ndarray:
    """Row -> input position. Tensor input keeps its order (index 0..n-1); files are indexed by path."""
    if filepaths is None:
        return np.asarray(issues.index, dtype=np.int64)
    where = {str(p): i for i, p in enumerate(filepaths)}
    return np.asarray([where.get(str(k), -1) for k in issues.index], dtype=np.int64)


def _sets_as_indices(sets, filepaths, item_index: np.ndarray) -> list[list[int]]:
    if filepaths is None:
        return [[int(item_index[int(k)]) for k in s] for s in sets]
    where = {str(p): i for i, p in enumerate(filepaths)}
    return [[int(item_index[where[str(k)]]) for k in s if str(k) in where] for s in sets]


def summarize_issues(split: str, issues, info: dict, item_index, total: int, seconds: float,
                     filepaths=None, source: str = "") -> ImageQuality:
    """ImageQuality from cleanvision's issues frame: counts and worst examples per type, in item indices."""
    item_index = np.asarray(item_index, dtype=np.int64)
    positions = _row_positions(issues, filepaths)
    q = ImageQuality(split=split, images=len(item_index), total=total, seconds=seconds, source=source)
    for col in issues.columns:
        if not (col.startswith("is_") and col.endswith("_issue")):
            continue
        issue = col[3:-6]
        flagged = issues[col].to_numpy(dtype=bool)
        scores = issues.get(f"{issue}_score")
        q.cleanvision_counts[issue] = int(flagged.sum())
        if issue in RELATIVE_TO_MEDIAN and scores is not None and len(scores):
            values = scores.to_numpy(dtype=float)
            flagged = flagged & (values < RELATIVE_TO_MEDIAN[issue] * float(np.median(values)))
        q.counts[issue] = int(flagged.sum())
        order = np.flatnonzero(flagged)
        if scores is not None:   # cleanvision scores: lower = worse
            order = order[np.argsort(scores.to_numpy()[order], kind="stable")]
        q.examples[issue] = [int(item_index[positions[r]]) for r in order[:EXAMPLES_PER_ISSUE] if positions[r] >= 0]
    for issue in DUPLICATE_ISSUES:
        sets = (info.get(issue) or {}).get("sets") or []
        q.duplicate_sets[issue] = _sets_as_indices(sets, filepaths, item_index)
    return q


def image_quality_of_tensors(split: str, images: list, item_index, total: int,
                             issue_types: Iterable[str] = DEFAULT_ISSUES) -> ImageQuality:
    """cleanvision on (C, H, W) tensors (item_index[i] is the dataset index of images[i])."""
    require_cleanvision()
    if not images:
        raise SkipCheck(f"the {split} split has no images to examine")
    start = time.perf_counter()
    scale = pixel_scale(images[:64])
    pils = [tensor_to_pil(x, scale) for x in images]
    issues, info = _run_imagelab(images=pils, issue_types=issue_types)
    return summarize_issues(split, issues, info, item_index, total, time.perf_counter() - start,
                            source=scale.note)


def image_quality_of_files(split: str, paths: list, item_index, total: int,
                           issue_types: Iterable[str] = DEFAULT_ISSUES) -> ImageQuality:
    """cleanvision on image files (an image folder: the files, not the transformed tensors)."""
    require_cleanvision()
    if not paths:
        raise SkipCheck(f"the {split} split has no image files to examine")
    start = time.perf_counter()
    issues, info = _run_imagelab(filepaths=paths, issue_types=issue_types)
    return summarize_issues(split, issues, info, item_index, total, time.perf_counter() - start,
                            filepaths=[str(p) for p in paths], source="image files")


def sample_indices(n: int, cap: int, seed: int) -> np.ndarray:
    """0..n-1, or a sorted seeded sample of `cap` of them."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def dataset_files(dataset) -> list[str] | None:
    """The file of each item of an ImageFolder-like Dataset (`samples` or `imgs`: (path, label) pairs),
    through torch Subsets; None when the Dataset does not list its files."""
    indices = None
    while hasattr(dataset, "dataset") and hasattr(dataset, "indices"):
        sub = list(dataset.indices)
        indices = sub if indices is None else [sub[i] for i in indices]
        dataset = dataset.dataset
    samples = getattr(dataset, "samples", None) or getattr(dataset, "imgs", None)
    if not isinstance(samples, (list, tuple)) or not samples or not isinstance(samples[0], (tuple, list)):
        return None
    paths = [str(s[0]) for s in samples]
    return [paths[i] for i in indices] if indices is not None else paths


def image_quality_of_split(ctx, split: str, cap: int = IMAGE_SAMPLE) -> ImageQuality:
    """cleanvision on a seeded sample of at most `cap` items of a tensor split: the image files when the
    Dataset lists them (an image folder), else its (C, H, W) tensors as the Dataset returns them."""
    require_cleanvision()
    s = ctx.tensor_split(split)
    idx = sample_indices(len(s), images_within_budget(s, cap), ctx.seed)
    files = dataset_files(s.dataset)
    if files is not None and len(files) == len(s):
        return image_quality_of_files(split, [files[i] for i in idx], idx, len(s))
    from ..engine.inputs import input_tensors

    images = []
    for i in idx:
        x, _ = s.item(int(i))
        tensors = input_tensors(x)
        if not tensors:
            raise SkipCheck(f"{s.source}[{int(i)}] holds no image tensor")
        images.append(tensors[0][1])
    return image_quality_of_tensors(split, images, idx, len(s))


def images_within_budget(s, cap: int = IMAGE_SAMPLE) -> int:
    """How many images of this split fit PIXEL_BUDGET (judged by the first item), between MIN_IMAGES and cap."""
    from ..engine.inputs import input_tensors

    tensors = input_tensors(s.item(0)[0])
    if not tensors or tensors[0][1].dim() < 2:
        return cap
    h, w = tensors[0][1].shape[-2:]
    return int(min(cap, max(MIN_IMAGES, PIXEL_BUDGET // max(int(h) * int(w), 1))))
